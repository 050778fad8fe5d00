//! The eval manifest: a TOML file listing labelled media — `[[video]]` with the stream-time intervals where each
//! label is present, `[[photo]]` with the expected count per label, `[[prompt]]` with the expected top-1 prompt —
//! and the loader that resolves every `file` and reports all problems at once, each naming the manifest file and
//! the entry (`video[2] (vtest.avi): truth.person[1]: …`).
//!
//! # Where `file` points
//! 1. A leading `$NAME/` or `${NAME}/` is replaced by that environment variable. `SCENEWATCH_CACHE` defaults to
//!    `/var/cache/scenewatch` and `SCENEWATCH_MEDIA` to `$SCENEWATCH_CACHE/media` (where `scripts/deps.sh` puts
//!    the sample media); any other variable must be set.
//! 2. `file:///abs/path` is that absolute path; other URL schemes are refused (truth is in stream time of a file).
//! 3. An absolute path is used as is; a relative path is relative to the directory of the manifest file, so a
//!    manifest works from any working directory (as model paths are relative to the config file).
//!
//! # Camera keys
//! `camera` tables hold any camera keys of the daemon's config (`sample_fps`, `rules`, `prompts`, …), kept as
//! TOML values: the top-level `[camera]` applies to every entry and an entry's own `camera` replaces keys of it
//! (a shallow merge: an entry's `rules` replaces the whole list). The runner gives the result to the daemon's own
//! config validation; this loader only refuses the keys the runner sets itself (`url`, `name`, `loop`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::infer::labels::{coco_label_index, VEHICLE_GROUP};

/// Default of `$SCENEWATCH_CACHE`, as in `scripts/deps.sh`.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/scenewatch";

/// Camera keys a manifest may not set: the runner sets them for each entry.
const RUNNER_KEYS: [&str; 4] = [
    "url",    // the entry's `file`
    "inputs", // the entry's `file` is the camera's one input
    "name",   // derived from the entry
    "loop",   // a looping file never ends, so the entry would never be scored
];

/// A loaded manifest: every entry's `file` resolved, every truth checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The manifest file itself (set by [`Manifest::load`]).
    #[serde(skip)]
    pub path: PathBuf,
    /// Camera keys for every entry (an entry's own `camera` keys win).
    #[serde(default)]
    pub camera: toml::Table,
    #[serde(default, rename = "video")]
    pub videos: Vec<VideoEntry>,
    #[serde(default, rename = "photo")]
    pub photos: Vec<PhotoEntry>,
    #[serde(default, rename = "prompt")]
    pub prompts: Vec<PromptEntry>,
}

/// A video file played as a camera; truth in seconds of stream time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoEntry {
    /// As written in the manifest (reported back in `videos[].file`).
    pub file: String,
    /// `file` resolved (set by the loader).
    #[serde(skip)]
    pub path: PathBuf,
    /// Never used to tune thresholds: its figures check that tuning generalises.
    #[serde(default)]
    pub held_apart: bool,
    #[serde(default)]
    pub camera: toml::Table,
    /// Per label, `[[start, end], …]` in seconds, sorted and not overlapping. A label not listed is not scored
    /// for recall in this video, but its alerts here still count as false alerts; `label = []` says it is
    /// never present.
    #[serde(default)]
    pub truth: BTreeMap<String, Vec<[f64; 2]>>,
}

/// A still photo; truth is the expected number of objects per label (0 = must not be detected).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotoEntry {
    pub file: String,
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(default)]
    pub held_apart: bool,
    #[serde(default)]
    pub camera: toml::Table,
    /// Labels not listed are not scored on this photo.
    pub truth: BTreeMap<String, u32>,
}

/// A photo (or video) whose best-scoring prompt among the camera's `prompts` should be `expect`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptEntry {
    pub file: String,
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(default)]
    pub held_apart: bool,
    #[serde(default)]
    pub camera: toml::Table,
    /// The `text` of one of the camera's prompts.
    pub expect: String,
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("eval manifest {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("eval manifest {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("eval manifest {}: {} problem(s):\n  {}\n(see docs/eval.md)", path.display(), problems.len(), problems.join("\n  "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

/// Which entry a problem belongs to, for messages: `video[0] (media/vtest.avi)`.
struct EntryName<'a>(&'a str, usize, &'a str);

impl fmt::Display for EntryName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}] ({})", self.0, self.1, self.2)
    }
}

impl Manifest {
    /// Reads, parses, resolves and checks a manifest, with the process environment for `$NAME/` prefixes.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_str_at(&text, path, &|name| std::env::var_os(name))
    }

    /// As [`Manifest::load`] on `text` as if read from `path`, with `env` for variables (tests pass their own).
    pub fn from_str_at(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Self, ManifestError> {
        let mut m: Manifest = toml::from_str(text).map_err(|e| ManifestError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        m.path = path.to_path_buf();
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut problems = Vec::new();
        if m.videos.is_empty() && m.photos.is_empty() && m.prompts.is_empty() {
            problems.push("no [[video]], [[photo]] or [[prompt]] entries".to_string());
        }
        check_camera("[camera]", &m.camera, &mut problems);

        for (i, v) in m.videos.iter_mut().enumerate() {
            let name = EntryName("video", i, &v.file).to_string();
            v.path = resolve_checked(&name, &v.file, &base, env, &mut problems);
            check_camera(&name, &v.camera, &mut problems);
            for (label, intervals) in &v.truth {
                check_label(&name, label, &mut problems);
                check_intervals(&name, label, intervals, &mut problems);
            }
        }
        for (i, p) in m.photos.iter_mut().enumerate() {
            let name = EntryName("photo", i, &p.file).to_string();
            p.path = resolve_checked(&name, &p.file, &base, env, &mut problems);
            check_camera(&name, &p.camera, &mut problems);
            if p.truth.is_empty() {
                problems.push(format!("{name}: truth: lists no label"));
            }
            for label in p.truth.keys() {
                check_label(&name, label, &mut problems);
            }
        }
        let top_prompts = prompt_texts(&m.camera);
        for (i, p) in m.prompts.iter_mut().enumerate() {
            let name = EntryName("prompt", i, &p.file).to_string();
            p.path = resolve_checked(&name, &p.file, &base, env, &mut problems);
            check_camera(&name, &p.camera, &mut problems);
            let texts = if p.camera.contains_key("prompts") {
                prompt_texts(&p.camera)
            } else {
                top_prompts.clone()
            };
            match texts {
                Err(e) => problems.push(format!("{name}: camera.prompts: {e}")),
                Ok(t) if t.is_empty() => problems.push(format!(
                    "{name}: the camera has no prompts to rank (set camera.prompts = [{{ text = \"…\" }}, …])"
                )),
                Ok(t) if !t.iter().any(|x| x == &p.expect) => problems.push(format!(
                    "{name}: expect: '{}' is not the text of one of the camera's {} prompts",
                    p.expect,
                    t.len()
                )),
                Ok(_) => {}
            }
        }
        if problems.is_empty() {
            Ok(m)
        } else {
            Err(ManifestError::Invalid {
                path: path.to_path_buf(),
                problems,
            })
        }
    }

    /// The camera keys for an entry: the top-level `[camera]` with the entry's own keys replacing its keys.
    pub fn camera_for(&self, entry: &toml::Table) -> toml::Table {
        let mut merged = self.camera.clone();
        for (k, v) in entry {
            merged.insert(k.clone(), v.clone());
        }
        merged
    }

    /// Every label with truth in some video or photo, sorted: the rows of the report.
    pub fn truth_labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = self
            .videos
            .iter()
            .flat_map(|v| v.truth.keys())
            .chain(self.photos.iter().flat_map(|p| p.truth.keys()))
            .cloned()
            .collect();
        labels.sort();
        labels.dedup();
        labels
    }
}

/// Resolves `file` by the rule in the module doc. Errors are messages without the entry name.
pub fn resolve_file(
    file: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, String> {
    let file = file.trim();
    if file.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(rest) = file.strip_prefix('$') {
        let (name, tail) = match rest.strip_prefix('{') {
            Some(r) => r
                .split_once('}')
                .ok_or_else(|| format!("'{file}': '${{' without a closing '}}'"))?,
            None => rest.split_at(rest.find('/').unwrap_or(rest.len())),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("'{file}': '{name}' is not a variable name"));
        }
        let dir = variable(name, env).ok_or_else(|| {
            format!("'{file}': ${name} is not set (only SCENEWATCH_CACHE and SCENEWATCH_MEDIA have defaults)")
        })?;
        let tail = tail.trim_start_matches('/');
        return Ok(if tail.is_empty() { dir } else { dir.join(tail) });
    }
    if let Some(rest) = file.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(format!(
                "'{file}': file URLs need an absolute path, e.g. file:///srv/clip.mp4"
            ));
        }
        return Ok(PathBuf::from(rest));
    }
    if file.contains("://") {
        return Err(format!(
            "'{file}': only files can be scored (a path, file:///… or $SCENEWATCH_MEDIA/…)"
        ));
    }
    let p = Path::new(file);
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    })
}

fn variable(name: &str, env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |n: &str| env(n).filter(|v| !v.is_empty()).map(PathBuf::from);
    match name {
        "SCENEWATCH_CACHE" => Some(set(name).unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR))),
        "SCENEWATCH_MEDIA" => Some(set(name).unwrap_or_else(|| {
            set("SCENEWATCH_CACHE")
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR))
                .join("media")
        })),
        _ => set(name),
    }
}

fn resolve_checked(
    name: &str,
    file: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
    problems: &mut Vec<String>,
) -> PathBuf {
    match resolve_file(file, base, env) {
        Ok(p) => {
            if !p.is_file() {
                problems.push(format!(
                    "{name}: file: {} does not exist or is not a file (the sample media come from \
                     scripts/deps.sh, the dev timelines from scripts/make_timelines.sh)",
                    p.display()
                ));
            }
            p
        }
        Err(e) => {
            problems.push(format!("{name}: file: {e}"));
            PathBuf::new()
        }
    }
}

fn check_camera(name: &str, camera: &toml::Table, problems: &mut Vec<String>) {
    for key in RUNNER_KEYS {
        if camera.contains_key(key) {
            problems.push(format!(
                "{name}: camera.{key}: set by the eval runner for each entry; remove it"
            ));
        }
    }
}

fn check_label(name: &str, label: &str, problems: &mut Vec<String>) {
    if label != VEHICLE_GROUP && coco_label_index(label).is_none() {
        problems.push(format!(
            "{name}: truth.{label}: not a rule label (a COCO class such as person, or vehicle)"
        ));
    }
}

fn check_intervals(name: &str, label: &str, intervals: &[[f64; 2]], problems: &mut Vec<String>) {
    let mut prev_end: Option<f64> = None;
    for (j, [start, end]) in intervals.iter().copied().enumerate() {
        let at = format!("{name}: truth.{label}[{j}]");
        if !start.is_finite() || !end.is_finite() || start < 0.0 {
            problems.push(format!("{at}: [{start}, {end}] must be finite seconds ≥ 0"));
        } else if start >= end {
            problems.push(format!("{at}: start {start} must be before end {end}"));
        } else if let Some(p) = prev_end.filter(|p| start <= *p) {
            problems.push(format!(
                "{at}: starts at {start}, not after the previous interval's end {p} (sort them and merge overlaps)"
            ));
        }
        if end.is_finite() {
            prev_end = Some(prev_end.map_or(end, |p| p.max(end)));
        }
    }
}

/// The `text` of each prompt in a camera table (`prompts = [{ text = "…" }, …]`); absent = none.
fn prompt_texts(camera: &toml::Table) -> Result<Vec<String>, String> {
    let Some(v) = camera.get("prompts") else {
        return Ok(Vec::new());
    };
    let arr = v.as_array().ok_or_else(|| {
        format!(
            "expected a list of {{ text = \"…\" }}, found {}",
            v.type_str()
        )
    })?;
    arr.iter()
        .enumerate()
        .map(|(i, p)| {
            p.get("text")
                .and_then(toml::Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("[{i}]: expected a table with a string `text`"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    /// A temp dir holding empty files with the given names, and a manifest path inside it.
    fn dir_with(files: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().expect("tempdir");
        for f in files {
            let p = d.path().join(f);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&p, b"").expect("write");
        }
        let m = d.path().join("eval.toml");
        (d, m)
    }

    fn load(text: &str, at: &Path) -> Result<Manifest, ManifestError> {
        Manifest::from_str_at(text, at, &no_env)
    }

    fn problems(r: Result<Manifest, ManifestError>) -> Vec<String> {
        match r {
            Err(ManifestError::Invalid { problems, .. }) => problems,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn loads_the_issue_example() {
        let (d, at) = dir_with(&[
            "media/vtest.avi",
            "media/astronaut.png",
            "media/chelsea.png",
        ]);
        let m = load(
            r#"
            [camera]
            prompts = [{ text = "a cat on a sofa" }, { text = "an empty street" }]

            [[video]]
            file = "media/vtest.avi"
            camera = { sample_fps = 2.0, clip_seconds = 4.0 }
            truth = { person = [[0.0, 79.5]] }

            [[photo]]
            file = "media/astronaut.png"
            truth = { person = 1 }

            [[prompt]]
            file = "media/chelsea.png"
            expect = "a cat on a sofa"
            held_apart = true
            "#,
            &at,
        )
        .expect("valid");
        assert_eq!(m.videos.len(), 1);
        assert_eq!(m.videos[0].path, d.path().join("media/vtest.avi"));
        assert_eq!(m.videos[0].truth["person"], vec![[0.0, 79.5]]);
        assert_eq!(m.photos[0].truth["person"], 1);
        assert!(m.prompts[0].held_apart);
        assert!(!m.videos[0].held_apart);
        let cam = m.camera_for(&m.videos[0].camera);
        assert_eq!(cam["sample_fps"].as_float(), Some(2.0));
        assert!(cam.contains_key("prompts"));
        assert_eq!(m.truth_labels(), vec!["person".to_string()]);
    }

    #[test]
    fn integer_seconds_are_accepted() {
        let (_d, at) = dir_with(&["a.mkv"]);
        let m = load(
            "[[video]]\nfile = \"a.mkv\"\ntruth = { person = [[10, 20]], vehicle = [] }",
            &at,
        )
        .expect("valid");
        assert_eq!(m.videos[0].truth["person"], vec![[10.0, 20.0]]);
        assert!(m.videos[0].truth["vehicle"].is_empty());
    }

    #[test]
    fn entry_camera_keys_replace_the_top_level_ones() {
        let (_d, at) = dir_with(&["a.mkv"]);
        let m = load(
            "[camera]\nsample_fps = 2.0\nclip_seconds = 4.0\n[[video]]\nfile = \"a.mkv\"\ncamera = { sample_fps = 5 }",
            &at,
        )
        .expect("valid");
        let cam = m.camera_for(&m.videos[0].camera);
        assert_eq!(cam["sample_fps"].as_integer(), Some(5));
        assert_eq!(cam["clip_seconds"].as_float(), Some(4.0));
    }

    #[test]
    fn resolution_rule() {
        let base = Path::new("/srv/eval");
        let env = |n: &str| match n {
            "SITE" => Some(OsString::from("/data/site")),
            "SCENEWATCH_CACHE" => Some(OsString::from("/c")),
            _ => None,
        };
        let r = |f: &str| resolve_file(f, base, &env);
        assert_eq!(r("clips/a.mp4"), Ok(PathBuf::from("/srv/eval/clips/a.mp4")));
        assert_eq!(r("/abs/a.mp4"), Ok(PathBuf::from("/abs/a.mp4")));
        assert_eq!(r("file:///abs/a.mp4"), Ok(PathBuf::from("/abs/a.mp4")));
        assert_eq!(r("$SITE/a.mp4"), Ok(PathBuf::from("/data/site/a.mp4")));
        assert_eq!(r("${SITE}/a.mp4"), Ok(PathBuf::from("/data/site/a.mp4")));
        // SCENEWATCH_MEDIA follows SCENEWATCH_CACHE when unset
        assert_eq!(
            r("$SCENEWATCH_MEDIA/v.avi"),
            Ok(PathBuf::from("/c/media/v.avi"))
        );
        let d = resolve_file("$SCENEWATCH_MEDIA/v.avi", base, &no_env);
        assert_eq!(d, Ok(PathBuf::from("/var/cache/scenewatch/media/v.avi")));
        assert!(r("$NOPE/a.mp4").unwrap_err().contains("$NOPE is not set"));
        assert!(r("${SITE/a.mp4").is_err());
        assert!(r("rtsp://cam/1").unwrap_err().contains("only files"));
        assert!(r("file://rel.mp4").is_err());
        assert!(r("  ").is_err());
    }

    #[test]
    fn every_problem_names_the_entry_and_all_are_reported() {
        let (_d, at) = dir_with(&["ok.mkv", "p.png"]);
        let p = problems(load(
            r#"
            [[video]]
            file = "ok.mkv"
            camera = { url = "file:///x" }
            truth = { person = [[5.0, 3.0], [10.0, 20.0], [15.0, 25.0]], persn = [[0.0, 1.0]] }

            [[video]]
            file = "missing.mkv"
            truth = { person = [[-1.0, 2.0]] }

            [[photo]]
            file = "p.png"
            truth = {}

            [[prompt]]
            file = "p.png"
            expect = "a cat"
            "#,
            &at,
        ));
        let all = p.join("\n");
        for want in [
            "video[0] (ok.mkv): camera.url: set by the eval runner",
            "video[0] (ok.mkv): truth.person[0]: start 5 must be before end 3",
            "video[0] (ok.mkv): truth.person[2]: starts at 15, not after the previous interval's end 20",
            "video[0] (ok.mkv): truth.persn: not a rule label",
            "video[1] (missing.mkv): file:",
            "video[1] (missing.mkv): truth.person[0]: [-1, 2] must be finite seconds ≥ 0",
            "photo[0] (p.png): truth: lists no label",
            "prompt[0] (p.png): the camera has no prompts",
        ] {
            assert!(all.contains(want), "missing «{want}» in:\n{all}");
        }
        assert_eq!(p.len(), 8, "{all}");
    }

    #[test]
    fn prompt_expect_must_be_one_of_the_cameras_prompts() {
        let (_d, at) = dir_with(&["c.png"]);
        let text = |expect: &str| {
            format!(
                "[camera]\nprompts = [{{ text = \"a cat indoors\" }}]\n[[prompt]]\nfile = \"c.png\"\nexpect = \"{expect}\""
            )
        };
        assert!(load(&text("a cat indoors"), &at).is_ok());
        let p = problems(load(&text("a dog"), &at));
        assert!(
            p[0].contains("'a dog' is not the text of one of the camera's 1 prompts"),
            "{p:?}"
        );
        let p = problems(load(
            "[[prompt]]\nfile = \"c.png\"\nexpect = \"x\"\ncamera = { prompts = \"x\" }",
            &at,
        ));
        assert!(p[0].contains("camera.prompts: expected a list"), "{p:?}");
    }

    #[test]
    fn parse_errors_name_the_file_and_the_key() {
        let (_d, at) = dir_with(&[]);
        let e = load("[[video]]\nfile = \"a\"\ntruth = { person = [[1.0]] }", &at).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("eval manifest {}:", at.display())),
            "{msg}"
        );
        assert!(msg.contains("truth"), "{msg}");
        let e = load("[[vidoe]]\nfile = \"a\"", &at)
            .unwrap_err()
            .to_string();
        assert!(e.contains("vidoe"), "{e}");
        let e = load("[[photo]]\nfile = \"a\"\ntruth = { person = -1 }", &at)
            .unwrap_err()
            .to_string();
        assert!(e.contains("person"), "{e}");
        let e = load("", &at).unwrap_err().to_string();
        assert!(
            e.contains("no [[video]], [[photo]] or [[prompt]] entries"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_manifest_names_its_path() {
        let e = Manifest::load(Path::new("/nonexistent/eval.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("eval manifest /nonexistent/eval.toml:"),
            "{e}"
        );
    }

    /// eval/dev.toml parses and checks against stand-in files (the real media may not be fetched here).
    #[test]
    fn the_dev_manifest_is_valid() {
        let text = include_str!("../../eval/dev.toml");
        let cache = tempfile::tempdir().expect("tempdir");
        let cache_dir = cache.path().as_os_str().to_os_string();
        let env = move |n: &str| (n == "SCENEWATCH_CACHE").then(|| cache_dir.clone());
        let raw: toml::Table = toml::from_str(text).expect("toml");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        for kind in ["video", "photo", "prompt"] {
            for e in raw[kind].as_array().expect("entries") {
                let file = e["file"].as_str().expect("file");
                let p = resolve_file(file, &repo.join("eval"), &env).expect("resolves");
                assert!(p.starts_with(cache.path()), "{file} is not under the cache");
                std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                std::fs::write(&p, b"").expect("stand-in");
            }
        }
        let m = Manifest::from_str_at(text, &repo.join("eval/dev.toml"), &env).expect("valid");
        assert_eq!(
            (m.videos.len(), m.photos.len(), m.prompts.len()),
            (7, 20, 14)
        );
        assert_eq!(
            m.truth_labels(),
            vec!["person".to_string(), "vehicle".to_string()]
        );
        let held: Vec<&str> = m
            .videos
            .iter()
            .filter(|v| v.held_apart)
            .map(|v| v.file.as_str())
            .collect();
        assert_eq!(held, vec!["$SCENEWATCH_CACHE/timelines/tl_person_b.mkv"]);
        assert!(m.photos.iter().any(|p| p.held_apart) && m.photos.iter().any(|p| !p.held_apart));
        assert!(m.prompts.iter().any(|p| p.held_apart) && m.prompts.iter().any(|p| !p.held_apart));
    }
}
