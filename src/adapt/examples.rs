//! The labelled examples of `scenewatch adapt train`: a folder with one sub-folder per class (photos, and videos
//! whose sampled frames all belong to that class), and optionally `ranges.csv` (`file,start,end,class`, times in
//! seconds of the video, `file` relative to the folder) for videos that show several classes. Listing and parsing
//! only; decoding and features are the command's.

use std::path::{Path, PathBuf};

use super::AdaptError;

/// Photo types the image decoder reads.
pub const PHOTO_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];
/// Video containers GStreamer's `uridecodebin` is expected to read.
pub const VIDEO_EXTENSIONS: [&str; 10] = [
    "mp4", "mkv", "avi", "mov", "webm", "ts", "m4v", "ogv", "flv", "mpg",
];
/// The optional time-range file in the examples folder.
pub const RANGES_FILE: &str = "ranges.csv";

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Photo(PathBuf),
    /// A video; with `range`, only clips wholly inside `start..end` seconds.
    Video {
        path: PathBuf,
        range: Option<(f64, f64)>,
    },
}

/// One labelled source. `group` names what its examples share (a photo's augmented copies, a video's or a range's
/// clips), so the validation split never sees a copy of what trained the head.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub class: usize,
    pub source: Source,
    pub group: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExampleSet {
    pub classes: Vec<String>,
    pub items: Vec<Item>,
    /// Files that were skipped (not a photo or video type), for the user to see.
    pub skipped: Vec<PathBuf>,
}

fn extension(p: &Path) -> Option<String> {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
}

/// Whether a path is a photo by its extension.
pub fn is_photo(p: &Path) -> bool {
    extension(p).is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.as_str()))
}

fn is_video(p: &Path) -> bool {
    extension(p).is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.as_str()))
}

/// Reads the folder: class names are the sub-folders' names (sorted) and the classes `ranges.csv` names. Errors
/// name the folder or the CSV line: fewer than two classes, a class without examples, a bad range.
pub fn scan(dir: &Path) -> Result<ExampleSet, AdaptError> {
    let io = |p: &Path, e: std::io::Error| AdaptError::Data(format!("{}: {e}", p.display()));
    let mut class_dirs: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() && !name.starts_with('.') {
            class_dirs.push((name, path));
        }
    }
    class_dirs.sort();
    let ranges_path = dir.join(RANGES_FILE);
    let ranges = if ranges_path.is_file() {
        let text = std::fs::read_to_string(&ranges_path).map_err(|e| io(&ranges_path, e))?;
        parse_ranges(&text)
            .map_err(|e| AdaptError::Data(format!("{}: {e}", ranges_path.display())))?
    } else {
        Vec::new()
    };
    let mut classes: Vec<String> = class_dirs.iter().map(|(n, _)| n.clone()).collect();
    for r in &ranges {
        if !classes.contains(&r.class) {
            classes.push(r.class.clone());
        }
    }
    classes.sort();
    let class_of = |name: &str| classes.iter().position(|c| c == name).unwrap_or(0);
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    for (name, path) in &class_dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            let group = f.display().to_string();
            let source = if is_photo(&f) {
                Source::Photo(f)
            } else if is_video(&f) {
                Source::Video {
                    path: f,
                    range: None,
                }
            } else {
                skipped.push(f);
                continue;
            };
            items.push(Item {
                class: class_of(name),
                source,
                group,
            });
        }
    }
    for r in &ranges {
        let path = dir.join(&r.file);
        if !path.is_file() {
            return Err(AdaptError::Data(format!(
                "{} line {}: {} does not exist",
                ranges_path.display(),
                r.line,
                path.display()
            )));
        }
        items.push(Item {
            class: class_of(&r.class),
            group: format!("{}@{}-{}", path.display(), r.start, r.end),
            source: Source::Video {
                path,
                range: Some((r.start, r.end)),
            },
        });
    }
    if classes.len() < 2 {
        return Err(AdaptError::Data(format!(
            "{}: a head needs at least two classes (one sub-folder per class, or classes in {RANGES_FILE}); found {}",
            dir.display(),
            classes.len()
        )));
    }
    for (k, c) in classes.iter().enumerate() {
        if !items.iter().any(|i| i.class == k) {
            return Err(AdaptError::Data(format!(
                "{}: class '{c}' has no photo or video ({} or {} files)",
                dir.display(),
                PHOTO_EXTENSIONS.join("/"),
                VIDEO_EXTENSIONS.join("/")
            )));
        }
    }
    Ok(ExampleSet {
        classes,
        items,
        skipped,
    })
}

/// One line of `ranges.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub line: usize,
    pub file: String,
    pub start: f64,
    pub end: f64,
    pub class: String,
}

/// Parses `file,start,end,class` lines (a header line, blank lines and `#` comments are skipped). Errors name the
/// line.
pub fn parse_ranges(text: &str) -> Result<Vec<Range>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if cols.len() != 4 {
            return Err(format!(
                "line {}: expected file,start,end,class, got {} fields",
                i + 1,
                cols.len()
            ));
        }
        let (start, end) = match (cols[1].parse::<f64>(), cols[2].parse::<f64>()) {
            (Ok(s), Ok(e)) => (s, e),
            // a header line
            _ if out.is_empty() && i == 0 => continue,
            _ => return Err(format!("line {}: start and end must be seconds", i + 1)),
        };
        if !(start.is_finite() && end.is_finite() && 0.0 <= start && start < end) {
            return Err(format!("line {}: need 0 <= start < end", i + 1));
        }
        if cols[0].is_empty() || cols[3].is_empty() {
            return Err(format!("line {}: file and class must not be empty", i + 1));
        }
        out.push(Range {
            line: i + 1,
            file: cols[0].to_string(),
            start,
            end,
            class: cols[3].to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_with_a_header_and_comments_and_errors_name_the_line() {
        let r = parse_ranges(
            "file,start,end,class\n# c\nyard.mp4, 0, 12.5, open\n\nyard.mp4,20,30,closed\n",
        )
        .expect("ranges");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].file, "yard.mp4");
        assert_eq!((r[0].start, r[0].end), (0.0, 12.5));
        assert_eq!(r[1].class, "closed");
        assert_eq!(r[1].line, 5);
        assert!(parse_ranges("a.mp4,5,2,x\n")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_ranges("a.mp4,0,2,x\nb.mp4,zero,2,x\n")
            .unwrap_err()
            .contains("line 2"));
        assert!(parse_ranges("a.mp4,0,2\n").is_err());
    }

    #[test]
    fn scan_lists_classes_and_refuses_a_single_class_or_an_empty_one() {
        let dir = std::env::temp_dir().join(format!("sw-examples-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["open", "closed"] {
            std::fs::create_dir_all(dir.join(d)).expect("mkdir");
        }
        std::fs::write(dir.join("open/a.jpg"), b"x").expect("write");
        std::fs::write(dir.join("open/notes.txt"), b"x").expect("write");
        // closed has nothing yet
        let e = scan(&dir).unwrap_err().to_string();
        assert!(e.contains("'closed' has no photo"), "{e}");
        std::fs::write(dir.join("closed/b.MP4"), b"x").expect("write");
        let s = scan(&dir).expect("scan");
        assert_eq!(s.classes, vec!["closed", "open"]);
        assert_eq!(s.items.len(), 2);
        assert!(matches!(
            s.items[0].source,
            Source::Video { range: None, .. }
        ));
        assert_eq!(s.items[0].class, 0);
        assert_eq!(s.skipped.len(), 1);
        std::fs::write(dir.join(RANGES_FILE), "open/a.jpg,0,4,ajar\n").expect("write");
        let s = scan(&dir).expect("scan with ranges");
        assert_eq!(s.classes, vec!["ajar", "closed", "open"]);
        std::fs::write(dir.join(RANGES_FILE), "missing.mp4,0,4,ajar\n").expect("write");
        assert!(scan(&dir)
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        std::fs::remove_dir_all(dir.join("closed")).expect("rm");
        std::fs::remove_file(dir.join(RANGES_FILE)).expect("rm");
        assert!(scan(&dir).unwrap_err().to_string().contains("two classes"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
