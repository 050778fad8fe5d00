//! The prompt parser: words → chunks (the longest phrase rule or object noun of `lexicon` at each word, else a
//! plain word) → a [`Program`]: the counted subjects with their filters, relations, light, clock window and
//! duration, the text left for the language head, and the words nothing can check. Deterministic and pure, so
//! the inference stage (which embeds the head text) and the events stage (which scores the parts) parse the same
//! prompt the same way.

use std::collections::HashSet;

use serde::Serialize;

use super::lexicon::{
    Act, CountRule, Light, Motion, Relation, FUNCTION_WORDS, NOUNS, NUMBERS, PHRASES, SCENE_WORDS,
    UNITS,
};
use crate::labels::{Posture, COCO_LABELS};

/// What the parser knows besides its tables: the camera's zone names, and (optionally) more words the language
/// head has evidence for (the ImageNet class names), so that only words nothing knows are reported.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseContext<'a> {
    pub zones: &'a [String],
    pub known_words: Option<&'a HashSet<String>>,
}

/// How many objects: `min..=max` (None = no upper bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Count {
    pub min: u32,
    pub max: Option<u32>,
}

impl Count {
    pub const ANY: Count = Count { min: 1, max: None };

    pub fn describe(&self) -> String {
        match (self.min, self.max) {
            (0, Some(0)) => "none".into(),
            (a, Some(b)) if a == b => format!("exactly {a}"),
            (0, Some(b)) => format!("at most {b}"),
            (a, Some(b)) => format!("{a} to {b}"),
            (a, None) => format!("at least {a}"),
        }
    }
}

/// A condition on each counted object, possibly negated ("not lying").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filter<T> {
    pub value: T,
    pub negated: bool,
}

/// An object noun that maps to a detector label, with how many of them and what must hold for each.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subject {
    /// The rule label (`person`, `vehicle`, a COCO class).
    pub label: String,
    /// The noun as written ("", for an implicit person: "nobody", "alone", a posture without a noun).
    pub noun: String,
    pub count: Count,
    /// The count was written ("two", "no", "alone"), not the default "at least one".
    pub counted: bool,
    pub posture: Option<Filter<Posture>>,
    pub motion: Option<Filter<Motion>>,
    pub zone: Option<Filter<String>>,
}

impl Subject {
    fn new(label: &str, noun: &str) -> Self {
        Self {
            label: label.into(),
            noun: noun.into(),
            count: Count::ANY,
            counted: false,
            posture: None,
            motion: None,
            zone: None,
        }
    }

    fn has_filters(&self) -> bool {
        self.posture.is_some() || self.motion.is_some() || self.zone.is_some()
    }
}

/// Subject `a` is `kind` subject `b`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rel {
    pub a: usize,
    pub kind: Relation,
    pub b: usize,
}

/// A parsed prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Program {
    pub text: String,
    /// What the language head embeds and scores: the free text (with its object nouns) when parts were
    /// understood, else the whole prompt.
    pub head_text: String,
    /// False: nothing beyond object nouns was understood, and the prompt is scored by the head alone, as before.
    pub structured: bool,
    /// Whether the head's score is one of the parts (a structured prompt whose every content word was understood
    /// has no free text left to score).
    pub uses_head: bool,
    pub subjects: Vec<Subject>,
    pub relations: Vec<Rel>,
    pub light: Option<Filter<Light>>,
    /// Local clock window, minutes since midnight `[from, to)` (wrapping past midnight when to < from).
    pub clock: Option<(u32, u32)>,
    /// Seconds the rest must hold.
    pub duration: Option<f64>,
    /// Words nothing in the product can check (scored only by the head's text similarity, if at all).
    pub unchecked: Vec<String>,
    /// Why parts of the prompt are not scored as written (negated free text, …).
    pub notes: Vec<String>,
}

/// Words quoted and comma-separated: "'talking', 'fighting'".
pub fn quoted(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Program {
    /// The words nothing can check, quoted and comma-separated ("'talking', 'fighting'"), for warnings.
    pub fn unchecked_list(&self) -> String {
        quoted(&self.unchecked)
    }

    /// Whether a part needs the pose model.
    pub fn needs_pose(&self) -> bool {
        self.subjects.iter().any(|s| s.posture.is_some())
    }

    /// Human-readable list of the understood parts, for `prompts test` and `validate`.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, s) in self.subjects.iter().enumerate() {
            let mut d = format!("{} {}", s.count.describe(), s.label);
            if let Some(p) = &s.posture {
                d += &format!(", {}{}", neg(p.negated), p.value.as_str());
            }
            if let Some(m) = &s.motion {
                d += &format!(", {}{}", neg(m.negated), m.value.as_str());
            }
            if let Some(z) = &s.zone {
                d += &format!(
                    ", {} zone '{}'",
                    if z.negated { "outside" } else { "in" },
                    z.value
                );
            }
            for r in self.relations.iter().filter(|r| r.a == i) {
                d += &format!(", {} a {}", r.kind.as_str(), self.subjects[r.b].label);
            }
            out.push(d);
        }
        if let Some(l) = &self.light {
            out.push(format!(
                "light: {}",
                match (l.value, l.negated) {
                    (Light::Dark, false) | (Light::Bright, true) => "dark",
                    _ => "bright",
                }
            ));
        }
        if let Some((a, b)) = self.clock {
            out.push(format!(
                "local time {:02}:{:02}-{:02}:{:02}",
                a / 60,
                a % 60,
                b / 60,
                b % 60
            ));
        }
        if let Some(d) = self.duration {
            out.push(format!("lasting at least {d:.0} s"));
        }
        out
    }
}

fn neg(n: bool) -> &'static str {
    if n {
        "not "
    } else {
        ""
    }
}

/// Splits into lowercase words: letters, digits, `:` inside times and `'` inside words; digits and letters apart
/// ("10pm" → "10", "pm"; "n't" stays "nt" after "is").
pub fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        let w = cur
            .trim_matches(|c| c == ':' || c == '\'')
            .replace('\'', "");
        if !w.is_empty() {
            out.push(w);
        }
        cur.clear();
    };
    for c in text.chars().flat_map(char::to_lowercase) {
        let keep = c.is_alphanumeric() || c == ':' || c == '\'';
        if !keep {
            flush(&mut cur, &mut out);
            continue;
        }
        if let Some(prev) = cur.chars().last() {
            let switch = (prev.is_ascii_digit() && c.is_alphabetic())
                || (prev.is_alphabetic() && c.is_ascii_digit());
            if switch {
                flush(&mut cur, &mut out);
            }
        }
        cur.push(c);
    }
    flush(&mut cur, &mut out);
    // "isn't" → "isnt"; "n't" forms are in the negation rule
    out
}

/// The words of the language head's class names (ImageNet's, COCO's): free-text words it has evidence for.
pub fn known_words(class_names: &[String]) -> HashSet<String> {
    class_names
        .iter()
        .map(String::as_str)
        .chain(COCO_LABELS)
        .flat_map(tokens)
        .flat_map(|w| {
            // plural forms of the names
            let plural = format!("{w}s");
            [w, plural]
        })
        .collect()
}

/// A value captured by a slot.
#[derive(Debug, Clone, PartialEq)]
enum Cap {
    Num(u32, bool),
    Time(u32),
    Unit(f64),
    Zone(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Chunk {
    Phrase { act: Act, caps: Vec<Cap> },
    Noun { label: String },
    Word,
}

/// Matches one pattern element list at `i`; returns the end and the captures (backtracking over optionals).
fn match_elems(
    elems: &[&str],
    words: &[String],
    i: usize,
    zones: &[(Vec<String>, String)],
    caps: &mut Vec<Cap>,
) -> Option<usize> {
    let Some((first, rest)) = elems.split_first() else {
        return Some(i);
    };
    let (core, optional) = match first.strip_suffix('?') {
        Some(c) => (c, true),
        None => (*first, false),
    };
    let mut tried = Vec::new();
    for (len, cap) in match_one(core, words, i, zones) {
        let mark = caps.len();
        caps.extend(cap);
        if let Some(end) = match_elems(rest, words, i + len, zones, caps) {
            tried.push((end, caps.clone()));
        }
        caps.truncate(mark);
    }
    if optional {
        if let Some(end) = match_elems(rest, words, i, zones, caps) {
            tried.push((end, caps.clone()));
        }
    }
    // the longest way through
    let (end, best) = tried.into_iter().max_by_key(|(end, _)| *end)?;
    *caps = best;
    Some(end)
}

/// The ways one element matches at `i`: (words used, capture).
fn match_one(
    elem: &str,
    words: &[String],
    i: usize,
    zones: &[(Vec<String>, String)],
) -> Vec<(usize, Option<Cap>)> {
    let Some(w) = words.get(i) else {
        return Vec::new();
    };
    match elem {
        "{n}" => number(w)
            .map(|n| (1, Some(Cap::Num(n, is_article(w)))))
            .into_iter()
            .collect(),
        "{unit}" => UNITS
            .iter()
            .find(|(u, _)| u == w)
            .map(|(_, s)| (1, Some(Cap::Unit(*s))))
            .into_iter()
            .collect(),
        "{t}" => clock_time(words, i)
            .map(|(len, m)| (len, Some(Cap::Time(m))))
            .into_iter()
            .collect(),
        "{zone}" => zones
            .iter()
            .filter(|(z, _)| !z.is_empty() && words.get(i..i + z.len()) == Some(&z[..]))
            .map(|(z, name)| (z.len(), Some(Cap::Zone(name.clone()))))
            .collect(),
        alts => alts
            .split('|')
            .any(|a| a == w)
            .then_some((1, None))
            .into_iter()
            .collect(),
    }
}

fn is_article(w: &str) -> bool {
    w == "a" || w == "an"
}

fn number(w: &str) -> Option<u32> {
    if let Ok(n) = w.parse::<u32>() {
        return Some(n);
    }
    NUMBERS.iter().find(|(n, _)| *n == w).map(|(_, v)| *v)
}

/// "22:00", "10 pm", "6am", "noon", "midnight" → (words used, minutes since midnight).
fn clock_time(words: &[String], i: usize) -> Option<(usize, u32)> {
    let w = words.get(i)?;
    match w.as_str() {
        "noon" | "midday" => return Some((1, 12 * 60)),
        "midnight" => return Some((1, 0)),
        _ => {}
    }
    let (h, m) = match w.split_once(':') {
        Some((h, m)) => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
        None => (w.parse::<u32>().ok()?, 0),
    };
    if h > 24 || m > 59 {
        return None;
    }
    let ampm = words.get(i + 1).map(String::as_str);
    match ampm {
        Some("am") if (1..=12).contains(&h) => Some((2, (h % 12) * 60 + m)),
        Some("pm") if (1..=12).contains(&h) => Some((2, (h % 12 + 12) * 60 + m)),
        _ if w.contains(':') || h == 0 => Some((1, (h % 24) * 60 + m)),
        // a bare hour without am/pm is ambiguous in "after 10": read it as written (24 h)
        _ => Some((1, (h % 24) * 60 + m)),
    }
}

/// The object noun table: COCO class names (singular, plural) and the synonyms of `lexicon::NOUNS`, longest first.
fn nouns() -> Vec<(Vec<String>, String)> {
    // the synonyms first: they win over a COCO name of the same length ("car" → vehicle)
    let mut v: Vec<(Vec<String>, String)> = NOUNS
        .iter()
        .map(|(n, l)| (vec![n.to_string()], l.to_string()))
        .collect();
    for l in COCO_LABELS {
        let words: Vec<String> = l.split(' ').map(String::from).collect();
        v.push((words.clone(), l.to_string()));
        let plural = crate::labels::plural(l, 2);
        v.push((plural.split(' ').map(String::from).collect(), l.to_string()));
    }
    v.sort_by_key(|(w, _)| std::cmp::Reverse(w.len()));
    v
}

fn chunk(
    words: &[String],
    zones: &[(Vec<String>, String)],
) -> Vec<(Chunk, std::ops::Range<usize>)> {
    let nouns = nouns();
    let patterns: Vec<(Vec<&str>, Act)> = PHRASES
        .iter()
        .map(|(p, a)| (p.split(' ').collect(), *a))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let mut best: Option<(usize, Chunk)> = None;
        for (elems, act) in &patterns {
            let mut caps = Vec::new();
            if let Some(end) = match_elems(elems, words, i, zones, &mut caps) {
                if end > i && best.as_ref().is_none_or(|(e, _)| end > *e) {
                    best = Some((end, Chunk::Phrase { act: *act, caps }));
                }
            }
        }
        if let Some((n, label)) = nouns
            .iter()
            .find(|(n, _)| words.get(i..i + n.len()) == Some(&n[..]))
        {
            let end = i + n.len();
            if best.as_ref().is_none_or(|(e, _)| end > *e) {
                best = Some((
                    end,
                    Chunk::Noun {
                        label: label.clone(),
                    },
                ));
            }
        }
        let (end, c) = best.unwrap_or((i + 1, Chunk::Word));
        out.push((c, i..end));
        i = end;
    }
    out
}

fn count_of(rule: CountRule, caps: &[Cap]) -> Option<(Count, bool)> {
    let n = caps.iter().find_map(|c| match c {
        Cap::Num(n, article) => Some((*n, *article)),
        _ => None,
    });
    let c = |min, max| Some((Count { min, max }, true));
    match (rule, n) {
        (CountRule::Fixed(a, b), _) => c(a, b),
        // "a person" is any number of people, not exactly one
        (CountRule::Exactly, Some((_, true))) => Some((Count::ANY, false)),
        (CountRule::Exactly, Some((n, _))) => c(n, Some(n)),
        (CountRule::AtLeast, Some((n, _))) => c(n, None),
        (CountRule::MoreThan, Some((n, _))) => c(n + 1, None),
        (CountRule::AtMost, Some((n, _))) => c(0, Some(n)),
        (CountRule::FewerThan, Some((n, _))) => c(0, Some(n.saturating_sub(1))),
        _ => None,
    }
}

/// Parses a prompt. Never fails: what the grammar does not understand is kept as free text for the head, and
/// words nothing knows are listed in `unchecked`.
pub fn parse(text: &str, ctx: &ParseContext<'_>) -> Program {
    let words = tokens(text);
    let zones: Vec<(Vec<String>, String)> = ctx
        .zones
        .iter()
        .map(|z| (tokens(&z.replace(['_', '-'], " ")), z.clone()))
        .collect();
    let chunks = chunk(&words, &zones);
    let mut keep = vec![true; words.len()];
    let mut p = Program {
        text: text.to_string(),
        head_text: String::new(),
        structured: false,
        uses_head: true,
        subjects: Vec::new(),
        relations: Vec::new(),
        light: None,
        clock: None,
        duration: None,
        unchecked: Vec::new(),
        notes: Vec::new(),
    };
    // what a phrase said about the next object noun
    let mut pending_count: Option<(Count, bool, std::ops::Range<usize>)> = None;
    let mut pending_not = false;
    let mut pending_rel: Option<(Relation, std::ops::Range<usize>)> = None;
    // filters said before any object noun ("lying on the floor: someone")
    let mut early: Vec<Act> = Vec::new();
    let mut early_caps: Vec<Vec<Cap>> = Vec::new();
    let mut current: Option<usize> = None;
    let mut loiter = false;
    let mut head_nouns: Vec<std::ops::Range<usize>> = Vec::new();
    let drop = |keep: &mut Vec<bool>, r: &std::ops::Range<usize>| {
        for k in r.clone() {
            keep[k] = false;
        }
    };

    for (ci, (c, span)) in chunks.iter().enumerate() {
        match c {
            Chunk::Noun { label } => {
                let mut s = Subject::new(label, &words[span.clone()].join(" "));
                if let Some((count, counted, r)) = pending_count.take() {
                    s.count = count;
                    s.counted = counted;
                    if counted {
                        drop(&mut keep, &r);
                    }
                }
                if s.count.max == Some(0) {
                    // the head cannot score an absence: the noun leaves its text
                    drop(&mut keep, span);
                } else {
                    head_nouns.push(span.clone());
                }
                p.subjects.push(s);
                let idx = p.subjects.len() - 1;
                match (pending_rel.take(), current) {
                    (Some((kind, r)), Some(a)) => {
                        p.relations.push(Rel { a, kind, b: idx });
                        drop(&mut keep, &r);
                    }
                    _ => {
                        if current.is_none() {
                            current = Some(idx);
                        }
                    }
                }
                if current == Some(idx) {
                    for (act, caps) in early.drain(..).zip(early_caps.drain(..)) {
                        apply_filter(&mut p.subjects[idx], act, &caps, false);
                    }
                }
            }
            Chunk::Phrase { act, caps } => {
                let negated = std::mem::take(&mut pending_not);
                match act {
                    Act::Count(rule) => match count_of(*rule, caps) {
                        Some((count, counted)) => {
                            pending_count = Some((count, counted, span.clone()))
                        }
                        None => continue,
                    },
                    Act::Zero => {
                        pending_count = Some((
                            Count {
                                min: 0,
                                max: Some(0),
                            },
                            true,
                            span.clone(),
                        ));
                    }
                    Act::Nobody | Act::Empty => {
                        let s = person(&mut p, &mut current, "");
                        s.count = Count {
                            min: 0,
                            max: Some(0),
                        };
                        s.counted = true;
                    }
                    Act::Alone => {
                        let s = person(&mut p, &mut current, "");
                        s.count = Count {
                            min: 1,
                            max: Some(1),
                        };
                        s.counted = true;
                    }
                    Act::Not => {
                        pending_not = true;
                    }
                    Act::Posture(_) | Act::Motion(_) | Act::Zone(_) => match current {
                        Some(i) => apply_filter(&mut p.subjects[i], *act, caps, negated),
                        None => {
                            // negation is folded in now, so it applies to the right phrase later
                            early.push(match (act, negated) {
                                (Act::Zone(out), true) => Act::Zone(!out),
                                _ => *act,
                            });
                            early_caps.push(caps.clone());
                            if negated {
                                if let Act::Posture(_) | Act::Motion(_) = act {
                                    p.notes.push(format!(
                                        "'not' before '{}' was read as negating it",
                                        words[span.clone()].join(" ")
                                    ));
                                }
                            }
                        }
                    },
                    Act::Loiter => loiter = true,
                    Act::Duration => {
                        let n = caps.iter().find_map(|c| match c {
                            Cap::Num(n, _) => Some(*n as f64),
                            _ => None,
                        });
                        let unit = caps.iter().find_map(|c| match c {
                            Cap::Unit(u) => Some(*u),
                            _ => None,
                        });
                        match (n, unit) {
                            (Some(n), Some(u)) => p.duration = Some(n * u),
                            _ => continue,
                        }
                    }
                    Act::Light(l) => p.light = Some(Filter { value: *l, negated }),
                    Act::After | Act::Before | Act::Between | Act::Period(..) => {
                        let t: Vec<u32> = caps
                            .iter()
                            .filter_map(|c| match c {
                                Cap::Time(m) => Some(*m),
                                _ => None,
                            })
                            .collect();
                        let w = match (act, t.as_slice()) {
                            (Act::After, [a]) => (*a, 24 * 60),
                            (Act::Before, [b]) => (0, *b),
                            (Act::Between, [a, b]) => (*a, *b),
                            (Act::Period(a, b), _) => (*a, *b),
                            _ => continue,
                        };
                        // "after 22:00" means the night that follows, until 06:00
                        let w = match (act, w) {
                            (Act::After, (a, _)) if a >= 12 * 60 => (a, 6 * 60),
                            _ => w,
                        };
                        p.clock = Some(if negated { (w.1, w.0) } else { w });
                    }
                    Act::Relation(kind) => {
                        // a relation only when an object noun follows (after an optional count)
                        let next_noun = chunks[ci + 1..]
                            .iter()
                            .find(|(c, _)| {
                                !matches!(
                                    c,
                                    Chunk::Phrase {
                                        act: Act::Count(_),
                                        ..
                                    }
                                )
                            })
                            .is_some_and(|(c, _)| matches!(c, Chunk::Noun { .. }));
                        if next_noun && current.is_some() {
                            pending_rel = Some((*kind, span.clone()));
                        } else {
                            // free text: "people in a room"
                            continue;
                        }
                    }
                }
                // an understood phrase leaves the head's text (counts keep their article; "empty" is also a
                // scene word the head's absence evidence scores)
                if !matches!(act, Act::Count(_) | Act::Empty) {
                    drop(&mut keep, span);
                }
            }
            Chunk::Word => {
                let w = &words[span.start];
                if std::mem::take(&mut pending_not) {
                    p.notes.push(format!(
                        "'not {w}': the negation of free text cannot be checked; '{w}' is left out"
                    ));
                    drop(&mut keep, span);
                    continue;
                }
            }
        }
    }
    // filters, counts or negations with no object noun are about people
    if !early.is_empty() {
        let s = person(&mut p, &mut current, "");
        for (act, caps) in early.drain(..).zip(early_caps.drain(..)) {
            apply_filter(s, act, &caps, false);
        }
    }
    if let Some((count, true, r)) = pending_count.take() {
        let s = person(&mut p, &mut current, "");
        s.count = count;
        s.counted = true;
        drop(&mut keep, &r);
    }
    if loiter {
        person(&mut p, &mut current, "");
        p.duration.get_or_insert(60.0);
    }
    if pending_not {
        p.notes.push("a trailing 'not' negates nothing".into());
    }

    p.structured = p.subjects.iter().any(|s| s.counted || s.has_filters())
        || !p.relations.is_empty()
        || p.light.is_some()
        || p.clock.is_some()
        || p.duration.is_some()
        || !p.notes.is_empty();
    // words nothing knows
    let known = |w: &str| {
        FUNCTION_WORDS.contains(&w)
            || SCENE_WORDS.contains(&w)
            || ctx.known_words.is_some_and(|k| k.contains(w))
            || number(w).is_some()
    };
    for (c, span) in &chunks {
        if let Chunk::Word = c {
            let w = &words[span.start];
            if keep[span.start] && w.chars().any(char::is_alphabetic) && !known(w) {
                p.unchecked.push(w.clone());
            }
        }
    }
    if p.structured {
        let kept: Vec<&str> = words
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(w, _)| w.as_str())
            .collect();
        let in_nouns = |i: usize| head_nouns.iter().any(|r| r.contains(&i));
        let free_content = words
            .iter()
            .enumerate()
            .any(|(i, w)| keep[i] && !in_nouns(i) && !FUNCTION_WORDS.contains(&w.as_str()));
        p.uses_head = free_content;
        p.head_text = if free_content {
            kept.join(" ")
        } else {
            text.to_string()
        };
    } else {
        p.head_text = text.to_string();
    }
    p
}

/// The person subject the phrase is about: the current subject when it is a person, else a new implicit one.
fn person<'a>(p: &'a mut Program, current: &mut Option<usize>, noun: &str) -> &'a mut Subject {
    let idx = match *current {
        Some(i) if p.subjects[i].label == "person" => i,
        _ => match p.subjects.iter().position(|s| s.label == "person") {
            Some(i) => i,
            None => {
                p.subjects.push(Subject::new("person", noun));
                p.subjects.len() - 1
            }
        },
    };
    if current.is_none() {
        *current = Some(idx);
    }
    &mut p.subjects[idx]
}

fn apply_filter(s: &mut Subject, act: Act, caps: &[Cap], negated: bool) {
    match act {
        Act::Posture(value) => s.posture = Some(Filter { value, negated }),
        Act::Motion(value) => s.motion = Some(Filter { value, negated }),
        Act::Zone(outside) => {
            if let Some(Cap::Zone(z)) = caps.iter().find(|c| matches!(c, Cap::Zone(_))) {
                s.zone = Some(Filter {
                    value: z.clone(),
                    negated: outside != negated,
                });
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Program {
        parse(text, &ParseContext::default())
    }

    fn pz(text: &str, zones: &[&str]) -> Program {
        let zones: Vec<String> = zones.iter().map(|z| z.to_string()).collect();
        parse(
            text,
            &ParseContext {
                zones: &zones,
                known_words: None,
            },
        )
    }

    fn count(p: &Program, label: &str) -> Option<Count> {
        p.subjects
            .iter()
            .find(|s| s.label == label)
            .map(|s| s.count)
    }

    #[test]
    fn tokens_split_words_numbers_and_times() {
        assert_eq!(
            tokens("After 10pm, two MEN"),
            ["after", "10", "pm", "two", "men"]
        );
        assert_eq!(tokens("at 22:00 isn't"), ["at", "22:00", "isnt"]);
    }

    #[test]
    fn counts_and_quantifiers() {
        let c = |min, max| Some(Count { min, max });
        assert_eq!(
            count(&p("two people standing together"), "person"),
            c(2, Some(2))
        );
        assert_eq!(count(&p("more than three people"), "person"), c(4, None));
        assert_eq!(count(&p("at least 2 cars"), "vehicle"), c(2, None));
        assert_eq!(count(&p("fewer than 3 people"), "person"), c(0, Some(2)));
        assert_eq!(count(&p("a crowd of people"), "person"), c(6, None));
        assert_eq!(count(&p("a crowd"), "person"), c(6, None));
        assert_eq!(count(&p("one person alone"), "person"), c(1, Some(1)));
        assert_eq!(count(&p("a man alone"), "person"), c(1, Some(1)));
        assert_eq!(count(&p("nobody"), "person"), c(0, Some(0)));
        assert_eq!(count(&p("no one in view"), "person"), c(0, Some(0)));
        assert_eq!(count(&p("an empty street"), "person"), c(0, Some(0)));
        // "a person" is presence, not "exactly one"
        let a = p("a person with a dog");
        assert_eq!(count(&a, "person"), Some(Count::ANY));
        assert_eq!(count(&a, "dog"), Some(Count::ANY));
        assert!(
            !a.structured,
            "object nouns alone leave the prompt to the head"
        );
        assert_eq!(a.head_text, "a person with a dog");
        assert!(p("two people").structured);
        assert!(!p("two people").needs_pose());
    }

    #[test]
    fn negation_counts_zero_and_negates_filters() {
        let q = p("a street with no cars");
        assert_eq!(
            count(&q, "vehicle"),
            Some(Count {
                min: 0,
                max: Some(0)
            })
        );
        assert_eq!(
            q.head_text, "a street with",
            "the absent noun leaves the head's text"
        );
        let q = p("a person not lying");
        let s = &q.subjects[0];
        assert_eq!(
            s.posture,
            Some(Filter {
                value: Posture::Lying,
                negated: true
            })
        );
        let q = p("a room without people");
        assert_eq!(
            count(&q, "person"),
            Some(Count {
                min: 0,
                max: Some(0)
            })
        );
        // negating free text cannot be checked: it is reported and left out
        let q = p("a person not smiling in a park");
        assert!(
            q.unchecked.is_empty(),
            "left out, not scored: {:?}",
            q.unchecked
        );
        assert!(q.notes[0].contains("cannot be checked"), "{:?}", q.notes);
        assert_eq!(q.head_text, "a person in a park");
    }

    #[test]
    fn posture_phrases_attach_to_their_person() {
        let q = p("a person lying on the ground");
        assert_eq!(q.subjects.len(), 1);
        assert_eq!(
            q.subjects[0].posture.as_ref().map(|f| f.value),
            Some(Posture::Lying)
        );
        assert!(q.needs_pose());
        assert!(
            !q.uses_head,
            "every content word understood: {}",
            q.head_text
        );
        let q = p("someone sitting");
        assert_eq!(
            q.subjects[0].posture.as_ref().map(|f| f.value),
            Some(Posture::Sitting)
        );
        // a posture with no noun is about a person
        let q = p("fallen on the floor");
        assert_eq!(q.subjects[0].label, "person");
        assert_eq!(
            q.subjects[0].posture.as_ref().map(|f| f.value),
            Some(Posture::Lying)
        );
        // "standing still" is motion, not posture
        let q = p("a man standing still");
        assert_eq!(q.subjects[0].posture, None);
        assert_eq!(
            q.subjects[0].motion.as_ref().map(|f| f.value),
            Some(Motion::Still)
        );
    }

    #[test]
    fn motion_and_duration() {
        let q = p("a person running");
        assert_eq!(
            q.subjects[0].motion.as_ref().map(|m| m.value),
            Some(Motion::Running)
        );
        let q = p("a car not moving for more than 2 minutes");
        assert_eq!(q.subjects[0].label, "vehicle");
        assert_eq!(
            q.subjects[0].motion.as_ref().map(|m| m.value),
            Some(Motion::Still)
        );
        assert_eq!(q.duration, Some(120.0));
        let q = p("someone loitering");
        assert_eq!(q.duration, Some(60.0));
        assert_eq!(q.subjects[0].label, "person");
        assert_eq!(p("a person for a minute").duration, Some(60.0));
    }

    #[test]
    fn places_are_the_cameras_zones_only() {
        let q = pz("a person in the driveway", &["driveway", "front_door"]);
        assert_eq!(
            q.subjects[0].zone,
            Some(Filter {
                value: "driveway".into(),
                negated: false
            })
        );
        let q = pz("someone near the front door", &["driveway", "front_door"]);
        assert_eq!(
            q.subjects[0].zone.as_ref().map(|z| z.value.as_str()),
            Some("front_door")
        );
        let q = pz("a car outside the driveway", &["driveway"]);
        assert_eq!(q.subjects[0].zone.as_ref().map(|z| z.negated), Some(true));
        // not a zone: free text for the head, not a guess
        let q = pz("a person in the kitchen", &["driveway"]);
        assert_eq!(q.subjects[0].zone, None);
        assert!(!q.structured);
        assert_eq!(q.head_text, "a person in the kitchen");
    }

    #[test]
    fn relations_need_an_object_on_both_sides() {
        let q = p("a person next to a car");
        assert_eq!(
            q.relations,
            vec![Rel {
                a: 0,
                kind: Relation::Near,
                b: 1
            }]
        );
        assert_eq!(q.subjects[1].label, "vehicle");
        let q = p("a cat on a couch");
        assert_eq!(
            q.relations,
            vec![Rel {
                a: 0,
                kind: Relation::On,
                b: 1
            }]
        );
        let q = p("a dog inside a car");
        assert_eq!(q.relations[0].kind, Relation::Inside);
        // "in a spacesuit": no object noun follows, so it stays free text
        let q = p("a person in a spacesuit");
        assert!(q.relations.is_empty());
        assert!(!q.structured);
    }

    #[test]
    fn time_of_day_and_light() {
        let q = p("a street at night with no people");
        assert_eq!(q.light.as_ref().map(|l| l.value), Some(Light::Dark));
        assert_eq!(
            count(&q, "person"),
            Some(Count {
                min: 0,
                max: Some(0)
            })
        );
        assert_eq!(q.head_text, "a street with");
        assert_eq!(
            p("people during the day").light.map(|l| l.value),
            Some(Light::Bright)
        );
        assert_eq!(p("a person after 10 pm").clock, Some((22 * 60, 6 * 60)));
        assert_eq!(p("a person after 22:00").clock, Some((22 * 60, 6 * 60)));
        assert_eq!(p("a car between 1am and 5am").clock, Some((60, 300)));
        assert_eq!(p("a person in the morning").clock, Some((360, 720)));
    }

    #[test]
    fn unknown_words_are_reported_not_guessed() {
        let q = p("a man talking to the camera indoors");
        assert!(
            q.unchecked.contains(&"talking".to_string()),
            "{:?}",
            q.unchecked
        );
        assert!(q.unchecked.contains(&"camera".to_string()));
        assert!(!q.unchecked.contains(&"indoors".to_string()));
        // the ImageNet names (given by the caller) make "camera" known to the head
        let known: HashSet<String> = ["camera".to_string()].into();
        let q = parse(
            "a man talking to the camera indoors",
            &ParseContext {
                zones: &[],
                known_words: Some(&known),
            },
        );
        assert_eq!(q.unchecked, vec!["talking".to_string()]);
        let q = p("a package at the door");
        assert_eq!(q.unchecked, vec!["package".to_string()]);
        assert!(p("two people standing").unchecked.is_empty());
    }

    #[test]
    fn head_text_keeps_the_free_text_and_its_nouns() {
        let q = pz(
            "two people standing in the driveway at night",
            &["driveway"],
        );
        assert!(q.structured);
        assert!(!q.uses_head, "{}", q.head_text);
        let q = p("a person lying on the grass at night");
        assert!(q.uses_head);
        assert_eq!(q.head_text, "a person on the grass");
        let q = p("people walking on a path");
        assert_eq!(q.head_text, "people on a path");
        assert_eq!(p("a cup of coffee").head_text, "a cup of coffee");
    }

    #[test]
    fn describe_lists_the_understood_parts() {
        let q = pz(
            "more than two people lying in the yard after 22:00 for 5 minutes",
            &["yard"],
        );
        assert_eq!(
            q.describe(),
            vec![
                "at least 3 person, lying, in zone 'yard'".to_string(),
                "local time 22:00-06:00".to_string(),
                "lasting at least 300 s".to_string(),
            ]
        );
    }
}
