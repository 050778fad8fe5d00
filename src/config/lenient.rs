//! Deserialisation of the merged file + environment values that finds every problem in one run.
//!
//! The `config` crate's own deserialiser stops at the first error, and `deny_unknown_fields` makes the first unknown
//! key hide everything after it. This one sees each struct's field list: unknown keys are noted (with a "did you
//! mean") and skipped, so the typed structs keep `deny_unknown_fields` for every other reader. A value of the wrong
//! type is noted with its key path and dropped (its default applies, or a placeholder when the key is required), and
//! the whole config is read again, so one bad value does not hide the next.
//!
//! Strings stay strings: an environment value reaches a string field byte for byte (`0123`, `TRUE`, `1e5`, ``),
//! while number and boolean fields parse it (`SCENEWATCH__MQTT__PORT=1884`). TOML values keep their types: a number
//! where a string belongs is an error, not silently turned into text.

use std::cell::RefCell;
use std::fmt;

use config::{Map, Value, ValueKind};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use super::Problem;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn render(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() {
        "(top level)".into()
    } else {
        s
    }
}

/// A deserialisation error; `path` is filled in by the innermost node that sees it.
#[derive(Debug)]
pub struct Error {
    path: Option<Vec<Seg>>,
    message: String,
    /// A required field that is absent (its name, below `path`).
    missing: Option<String>,
}

impl std::error::Error for Error {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            path: None,
            message: msg.to_string(),
            missing: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self {
            path: None,
            message: "is required".into(),
            missing: Some(field.into()),
        }
    }
}

impl Error {
    fn at(mut self, path: &[Seg]) -> Self {
        if self.path.is_none() {
            let mut p = path.to_vec();
            if let Some(field) = &self.missing {
                p.push(Seg::Key(field.clone()));
            }
            self.path = Some(p);
        }
        self
    }
}

fn describe(v: &ValueKind) -> String {
    match v {
        ValueKind::Nil => "nothing".into(),
        ValueKind::Boolean(b) => format!("boolean {b}"),
        ValueKind::I64(i) => format!("integer {i}"),
        ValueKind::I128(i) => format!("integer {i}"),
        ValueKind::U64(i) => format!("integer {i}"),
        ValueKind::U128(i) => format!("integer {i}"),
        ValueKind::Float(x) => format!("number {x}"),
        ValueKind::String(s) => format!("string {s:?}"),
        ValueKind::Table(_) => "a table".into(),
        ValueKind::Array(_) => "a list".into(),
    }
}

/// Edit distance counting a swap of two neighbours as one edit (optimal string alignment), for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The closest of `known` to `word`, when it is close enough to be a typo.
pub fn suggest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (distance(word, k), *k))
        .filter(|(d, k)| *d <= (k.chars().count().max(word.chars().count()) / 4).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn unknown_key(key: &str, known: &[&str]) -> String {
    match suggest(key, known) {
        Some(s) => format!("unknown key (did you mean `{s}`?)"),
        None => format!("unknown key (known here: {})", known.join(", ")),
    }
}

struct Node<'a> {
    value: Value,
    path: Vec<Seg>,
    unknown: &'a RefCell<Vec<Problem>>,
}

impl Node<'_> {
    fn wrong(&self, expected: &str) -> Error {
        Error {
            path: Some(self.path.clone()),
            message: format!("expected {expected}, found {}", describe(&self.value.kind)),
            missing: None,
        }
    }

    fn integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.value.kind {
            ValueKind::I64(i) => visitor.visit_i64(*i),
            ValueKind::U64(u) => visitor.visit_u64(*u),
            ValueKind::I128(i) => visitor.visit_i128(*i),
            ValueKind::U128(u) => visitor.visit_u128(*u),
            ValueKind::String(s) => match (s.trim().parse::<i64>(), s.trim().parse::<u64>()) {
                (Ok(i), _) => visitor.visit_i64(i),
                (_, Ok(u)) => visitor.visit_u64(u),
                _ => return Err(self.wrong("a whole number")),
            },
            _ => return Err(self.wrong("a whole number")),
        };
        r.map_err(|e: Error| e.at(&self.path))
    }

    fn float<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let x = match &self.value.kind {
            ValueKind::Float(x) => *x,
            ValueKind::I64(i) => *i as f64,
            ValueKind::U64(u) => *u as f64,
            ValueKind::I128(i) => *i as f64,
            ValueKind::U128(u) => *u as f64,
            ValueKind::String(s) => match s.trim().parse::<f64>() {
                Ok(x) => x,
                Err(_) => return Err(self.wrong("a number")),
            },
            _ => return Err(self.wrong("a number")),
        };
        visitor.visit_f64(x).map_err(|e: Error| e.at(&self.path))
    }
}

macro_rules! integers {
    ($($m:ident)*) => {$(
        fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.integer(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Node<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let Node {
            value,
            path,
            unknown,
        } = self;
        let r = match value.kind {
            ValueKind::Nil => visitor.visit_unit(),
            ValueKind::Boolean(b) => visitor.visit_bool(b),
            ValueKind::I64(i) => visitor.visit_i64(i),
            ValueKind::I128(i) => visitor.visit_i128(i),
            ValueKind::U64(u) => visitor.visit_u64(u),
            ValueKind::U128(u) => visitor.visit_u128(u),
            ValueKind::Float(x) => visitor.visit_f64(x),
            ValueKind::String(s) => visitor.visit_string(s),
            ValueKind::Array(items) => return seq(items, path, unknown, visitor),
            ValueKind::Table(t) => visitor.visit_map(Entries::new(t, &path, unknown)),
        };
        r.map_err(|e| e.at(&path))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let b = match &self.value.kind {
            ValueKind::Boolean(b) => *b,
            // from the environment: `TRUE`, `false`, `1`, `off`…
            ValueKind::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => true,
                "false" | "no" | "off" | "0" => false,
                _ => return Err(self.wrong("true or false")),
            },
            _ => return Err(self.wrong("true or false")),
        };
        visitor.visit_bool(b).map_err(|e: Error| e.at(&self.path))
    }

    integers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.float(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.float(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.kind {
            ValueKind::String(s) => visitor.visit_string(s).map_err(|e: Error| e.at(&self.path)),
            _ => Err(self.wrong("a string (in quotes)")),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.kind {
            ValueKind::Nil => visitor.visit_none().map_err(|e: Error| e.at(&self.path)),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.kind {
            ValueKind::Nil => visitor.visit_unit().map_err(|e: Error| e.at(&self.path)),
            _ => Err(self.wrong("nothing")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.kind {
            ValueKind::Array(items) => seq(items, self.path, self.unknown, visitor),
            _ => Err(self.wrong("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.kind {
            ValueKind::Table(t) => visitor
                .visit_map(Entries::new(t, &self.path, self.unknown))
                .map_err(|e: Error| e.at(&self.path)),
            _ => Err(self.wrong("a table")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut t = match self.value.kind {
            ValueKind::Table(t) => t,
            _ => return Err(self.wrong("a table")),
        };
        let mut stray: Vec<String> = t
            .keys()
            .filter(|k| !fields.contains(&k.as_str()))
            .cloned()
            .collect();
        stray.sort();
        for k in stray {
            t.remove(&k);
            let mut path = self.path.clone();
            path.push(Seg::Key(k.clone()));
            self.unknown.borrow_mut().push(Problem {
                key: render(&path),
                message: unknown_key(&k, fields),
            });
        }
        visitor
            .visit_map(Entries::new(t, &self.path, self.unknown))
            .map_err(|e: Error| e.at(&self.path))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.value.kind {
            ValueKind::String(s) if variants.contains(&s.as_str()) => {
                let variant: de::value::StringDeserializer<Error> = s.clone().into_deserializer();
                visitor
                    .visit_enum(variant)
                    .map_err(|e: Error| e.at(&self.path))
            }
            ValueKind::String(s) => Err(Error {
                path: Some(self.path.clone()),
                message: match suggest(s, variants) {
                    Some(m) => format!("unknown value {s:?} (did you mean \"{m}\"?)"),
                    None => format!("unknown value {s:?}: use one of {}", variants.join(", ")),
                },
                missing: None,
            }),
            _ => Err(self.wrong(&format!("one of {}", variants.join(", ")))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

fn seq<'de, V: Visitor<'de>>(
    items: Vec<Value>,
    path: Vec<Seg>,
    unknown: &RefCell<Vec<Problem>>,
    visitor: V,
) -> Result<V::Value, Error> {
    let total = items.len();
    let mut access = Items {
        items: items.into_iter(),
        index: 0,
        path: &path,
        unknown,
    };
    let v = visitor.visit_seq(&mut access);
    let (taken, left) = (access.index, access.items.as_slice().len());
    let v = v.map_err(|e| e.at(&path))?;
    if left > 0 {
        // a fixed-size item (an [x, y] point) given more values than it holds
        return Err(Error {
            path: Some(path),
            message: format!("expected {taken} values, found {total}"),
            missing: None,
        });
    }
    Ok(v)
}

struct Items<'p, 'a> {
    items: std::vec::IntoIter<Value>,
    index: usize,
    path: &'p [Seg],
    unknown: &'a RefCell<Vec<Problem>>,
}

impl<'de> de::SeqAccess<'de> for &mut Items<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(value) = self.items.next() else {
            return Ok(None);
        };
        let mut path = self.path.to_vec();
        path.push(Seg::Index(self.index));
        self.index += 1;
        seed.deserialize(Node {
            value,
            path,
            unknown: self.unknown,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Entries<'p, 'a> {
    entries: std::vec::IntoIter<(String, Value)>,
    pending: Option<(String, Value)>,
    path: &'p [Seg],
    unknown: &'a RefCell<Vec<Problem>>,
}

impl<'p, 'a> Entries<'p, 'a> {
    fn new(table: Map<String, Value>, path: &'p [Seg], unknown: &'a RefCell<Vec<Problem>>) -> Self {
        // sorted: the crate's map has no order, and problems should come out the same every run
        let mut entries: Vec<(String, Value)> = table.into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Self {
            entries: entries.into_iter(),
            pending: None,
            path,
            unknown,
        }
    }
}

impl<'de> de::MapAccess<'de> for Entries<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let name: de::value::StringDeserializer<Error> = key.clone().into_deserializer();
        let k = seed.deserialize(name)?;
        self.pending = Some((key, value));
        Ok(Some(k))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("a value without its key"));
        };
        let mut path = self.path.to_vec();
        path.push(Seg::Key(key));
        seed.deserialize(Node {
            value,
            path,
            unknown: self.unknown,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Values tried, in order, for a required key that is missing or unusable, so the rest can still be checked.
/// Each type the schema requires (strings, lists) is among them; its problem is reported once, under its key.
fn placeholder(n: usize) -> Option<ValueKind> {
    match n {
        0 => Some(ValueKind::String(String::new())),
        1 => Some(ValueKind::Array(Vec::new())),
        _ => None,
    }
}

fn slot<'v>(root: &'v mut Value, path: &[Seg]) -> Option<&'v mut Map<String, Value>> {
    let mut v = root;
    for seg in path {
        v = match (seg, &mut v.kind) {
            (Seg::Key(k), ValueKind::Table(t)) => t.get_mut(k)?,
            (Seg::Index(i), ValueKind::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    match &mut v.kind {
        ValueKind::Table(t) => Some(t),
        _ => None,
    }
}

/// Splits `path` at its last key: the table that holds it, and the key.
fn last_key(path: &[Seg]) -> Option<(&[Seg], &str)> {
    let i = path.iter().rposition(|s| matches!(s, Seg::Key(_)))?;
    match &path[i] {
        Seg::Key(k) => Some((&path[..i], k.as_str())),
        Seg::Index(_) => None,
    }
}

fn note(problems: &mut Vec<Problem>, p: Problem) {
    if !problems.contains(&p) {
        problems.push(p);
    }
}

/// Deserialises `root` as `T`, adding every problem met to `problems`. `None` when no `T` could be made even
/// with the bad values dropped.
pub fn deserialize<T: DeserializeOwned>(mut root: Value, problems: &mut Vec<Problem>) -> Option<T> {
    // required keys given a placeholder, and which placeholder
    let mut placed: Vec<(Vec<Seg>, usize)> = Vec::new();
    // each round drops one bad value or places one placeholder; the bound only stops a value nothing fixes
    for _ in 0..512 {
        let unknown = RefCell::new(Vec::new());
        let result = T::deserialize(Node {
            value: root.clone(),
            path: Vec::new(),
            unknown: &unknown,
        });
        for p in unknown.into_inner() {
            note(problems, p);
        }
        let e = match result {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let path = e.path.clone().unwrap_or_default();
        let key = render(&path);
        // our own placeholder did not fit: try the next one, reporting nothing new
        if let Some(at) = placed.iter_mut().find(|(p, _)| path.starts_with(p)) {
            at.1 += 1;
            let (p, n) = at.clone();
            let (Some(kind), Some((parent, k))) = (placeholder(n), last_key(&p)) else {
                return None;
            };
            slot(&mut root, parent)?.insert(k.to_string(), Value::new(None, kind));
            continue;
        }
        let reported = problems.iter().any(|p| {
            p.key == key
                || p.key.starts_with(&format!("{key}."))
                || p.key.starts_with(&format!("{key}["))
        });
        if e.missing.is_none() || !reported {
            note(
                problems,
                Problem {
                    key: key.clone(),
                    message: e.message,
                },
            );
        }
        // drop the bad value where its key is (a bad item of a list drops the list)
        let (parent, k) = last_key(&path)?;
        let t = slot(&mut root, parent)?;
        if e.missing.is_some() {
            let cut = path[..=parent.len()].to_vec();
            placed.push((cut, 0));
            let kind = placeholder(0)?;
            t.insert(k.to_string(), Value::new(None, kind));
        } else if t.remove(k).is_none() {
            return None;
        }
    }
    None
}
