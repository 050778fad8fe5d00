//! Log priorities for journald. Under systemd, stderr is a stream into the journal, which reads a `<N>` prefix on
//! each line as the syslog priority (sd-daemon(3), `SyslogLevelPrefix=` defaults to on); without one every line is
//! `info` and `journalctl -p err` shows nothing. When stderr is that stream — `JOURNAL_STREAM` names its device and
//! inode (systemd.exec(5)) — each line starts with its level's priority and drops the timestamp and colours the
//! journal has its own of. On a terminal or in a file nothing changes.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The syslog priority journald files a line of this level under: err 3, warning 4, info 6, debug 7.
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Whether `journal_stream` (the `JOURNAL_STREAM` value, `<device>:<inode>`) names the file stderr is: a child that
/// inherited the variable but got another stderr (a pipe, a file) must not write prefixes into it.
pub fn is_journal(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(v), Some((dev, ino))) = (journal_stream, stderr) else {
        return false;
    };
    let Some((d, i)) = v.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// Device and inode of this process's stderr.
pub fn stderr_id() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Whether this process's stderr is the journal.
pub fn stderr_is_journal() -> bool {
    is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref(), stderr_id())
}

/// Prints an error that is not a log event (config problems, one per line) to stderr; in the journal each line is
/// filed as `err`.
pub fn eprint_error(text: &str) {
    let journal = stderr_is_journal();
    for line in text.lines() {
        if journal {
            eprintln!("<3>{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

/// Wraps an event format with the `<N>` priority prefix.
pub struct PriorityPrefix<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for PriorityPrefix<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_stream_is_the_journal() {
        assert!(is_journal(Some("8:12345"), Some((8, 12345))));
        assert!(!is_journal(Some("8:12345"), Some((8, 99))));
        assert!(!is_journal(None, Some((8, 12345))));
        assert!(!is_journal(Some("garbage"), Some((8, 12345))));
        assert!(!is_journal(Some("8:12345"), None));
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::TRACE), 7);
    }
}
