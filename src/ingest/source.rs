//! Camera URLs: which kind of GStreamer source a `url` means. Pure parsing, no GStreamer.

use std::path::PathBuf;

/// The kinds of source a camera URL may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A local video file (`file:///…` or a plain absolute/relative path). Ends with EOS.
    File(PathBuf),
    /// An RTSP camera (`rtsp://…`, `rtsps://…`). Live; reconnected with backoff.
    Rtsp(String),
    /// A V4L2 device (`v4l2:///dev/video0`). Live.
    V4l2(PathBuf),
    /// GStreamer `videotestsrc` (`test://` or `test://ball`); a plumbing source that shows nothing real.
    Test { pattern: String },
}

impl SourceKind {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("must not be empty".into());
        }
        if let Some(rest) = url.strip_prefix("file://") {
            if rest.is_empty() || !rest.starts_with('/') {
                return Err(format!(
                    "'{url}': file URLs need an absolute path, e.g. file:///srv/video.mp4"
                ));
            }
            return Ok(Self::File(PathBuf::from(percent_decode(rest))));
        }
        if url.starts_with("rtsp://") || url.starts_with("rtsps://") {
            if url.split("://").nth(1).is_none_or(|h| h.is_empty()) {
                return Err(format!("'{url}': RTSP URL without a host"));
            }
            return Ok(Self::Rtsp(url.to_string()));
        }
        if let Some(dev) = url.strip_prefix("v4l2://") {
            if !dev.starts_with("/dev/") {
                return Err(format!("'{url}': expected v4l2:///dev/videoN"));
            }
            return Ok(Self::V4l2(PathBuf::from(dev)));
        }
        if let Some(pattern) = url.strip_prefix("test://") {
            let pattern = if pattern.is_empty() { "smpte" } else { pattern };
            if !pattern
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(format!(
                    "'{url}': test pattern must be a videotestsrc pattern name"
                ));
            }
            return Ok(Self::Test {
                pattern: pattern.to_string(),
            });
        }
        if url.contains("://") {
            return Err(format!(
                "'{url}': unsupported scheme (use file://, rtsp://, v4l2:// or test://)"
            ));
        }
        Ok(Self::File(PathBuf::from(url)))
    }

    /// Live sources produce frames in real time and are reconnected when they fail; files end.
    pub fn is_live(&self) -> bool {
        !matches!(self, Self::File(_))
    }
}

/// Minimal %XX decoding for file URLs (spaces and the like in paths).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            SourceKind::parse("file:///srv/a%20b.avi"),
            Ok(SourceKind::File("/srv/a b.avi".into()))
        );
        assert_eq!(
            SourceKind::parse("/srv/x.mp4"),
            Ok(SourceKind::File("/srv/x.mp4".into()))
        );
        assert!(matches!(
            SourceKind::parse("rtsp://cam.local:8554/live"),
            Ok(SourceKind::Rtsp(_))
        ));
        assert_eq!(
            SourceKind::parse("v4l2:///dev/video0"),
            Ok(SourceKind::V4l2("/dev/video0".into()))
        );
        assert_eq!(
            SourceKind::parse("test://"),
            Ok(SourceKind::Test {
                pattern: "smpte".into()
            })
        );
    }

    #[test]
    fn rejects_nonsense_with_a_reason() {
        for bad in [
            "",
            "ftp://x/y",
            "file://relative.avi",
            "rtsp://",
            "v4l2://video0",
            "test://a;b",
        ] {
            assert!(SourceKind::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn liveness() {
        assert!(!SourceKind::parse("file:///a.avi")
            .unwrap_or(SourceKind::Rtsp(String::new()))
            .is_live());
        assert!(SourceKind::parse("rtsp://h/s")
            .map(|k| k.is_live())
            .unwrap_or(false));
    }
}
