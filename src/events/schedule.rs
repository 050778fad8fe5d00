//! Rule schedules: weekly time windows in the camera's time zone ("mon-fri 18:00-07:00"), as plain functions.
//!
//! A window belongs to the day it starts on, so an overnight window (end before start) runs into the next morning,
//! and "fri 22:00-06:00" covers Saturday 05:00. Times are local wall-clock times in an IANA zone (`chrono-tz`), so a
//! window keeps meaning "18:00 on site" across daylight-saving changes. Outside every window a rule sees nothing:
//! its open alert ends as if the objects had left, and no new one starts.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

/// One weekly window: the days it starts on (Monday = 0) and minutes since local midnight.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    days: [bool; 7],
    start_min: u32,
    end_min: u32,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(s: &str) -> Result<usize, String> {
    let s = s.trim().to_ascii_lowercase();
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    (0..7)
        .find(|&i| s == DAYS[i] || s == FULL[i])
        .ok_or_else(|| format!("unknown day '{s}' (use mon, tue, wed, thu, fri, sat, sun)"))
}

fn minutes(s: &str) -> Result<u32, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("time '{s}' must be HH:MM"))?;
    let (h, m): (u32, u32) = (
        h.parse().map_err(|_| format!("time '{s}' must be HH:MM"))?,
        m.parse().map_err(|_| format!("time '{s}' must be HH:MM"))?,
    );
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("time '{s}' is out of range (00:00..24:00)"));
    }
    Ok(h * 60 + m)
}

impl Window {
    /// Parses `"<days> HH:MM-HH:MM"`, days being `daily`, `mon-fri`, `sat,sun`, `tue` …; or just `"HH:MM-HH:MM"`
    /// (every day).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (days_part, times) = match s.rsplit_once(char::is_whitespace) {
            Some((d, t)) => (d.trim(), t),
            None => ("daily", s),
        };
        let mut days = [false; 7];
        if matches!(days_part, "daily" | "*" | "every day") {
            days = [true; 7];
        } else {
            for part in days_part.split(',') {
                match part.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (day(a)?, day(b)?);
                        let mut d = a;
                        loop {
                            days[d] = true;
                            if d == b {
                                break;
                            }
                            d = (d + 1) % 7;
                        }
                    }
                    None => days[day(part)?] = true,
                }
            }
        }
        let (a, b) = times
            .split_once('-')
            .ok_or_else(|| format!("'{s}': the time range must be HH:MM-HH:MM"))?;
        let (start_min, end_min) = (minutes(a)?, minutes(b)?);
        if start_min == end_min {
            return Err(format!("'{s}': the window is empty (start = end)"));
        }
        Ok(Self {
            days,
            start_min,
            end_min,
        })
    }

    /// Whether local weekday `wd` (Monday = 0) at `m` minutes past midnight is inside.
    fn contains(&self, wd: usize, m: u32) -> bool {
        if self.start_min < self.end_min {
            self.days[wd] && (self.start_min..self.end_min).contains(&m)
        } else {
            (self.days[wd] && m >= self.start_min) || (self.days[(wd + 6) % 7] && m < self.end_min)
        }
    }
}

/// A rule's windows in one time zone. No windows = always active.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    tz: Tz,
    windows: Vec<Window>,
}

/// Parses an IANA zone name ("Europe/Brussels", "UTC").
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone '{name}' (use an IANA name such as Europe/Brussels or UTC)")
    })
}

impl Schedule {
    pub fn always() -> Self {
        Self {
            tz: Tz::UTC,
            windows: Vec::new(),
        }
    }

    /// Errors name the offending entry by index, for `validate`.
    pub fn parse(tz: &str, windows: &[String]) -> Result<Self, (Option<usize>, String)> {
        let tz = parse_tz(tz).map_err(|e| (None, e))?;
        let windows = windows
            .iter()
            .enumerate()
            .map(|(i, w)| Window::parse(w).map_err(|e| (Some(i), e)))
            .collect::<Result<_, _>>()?;
        Ok(Self { tz, windows })
    }

    pub fn is_always(&self) -> bool {
        self.windows.is_empty()
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let local = t.with_timezone(&self.tz);
        let wd = local.weekday().num_days_from_monday() as usize;
        let m = local.hour() * 60 + local.minute();
        self.windows.iter().any(|w| w.contains(wd, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn parses_days_ranges_and_rejects_nonsense() {
        let w = Window::parse("mon-fri 08:00-18:00").expect("valid");
        assert_eq!(w.days, [true, true, true, true, true, false, false]);
        assert_eq!((w.start_min, w.end_min), (480, 1080));
        let w = Window::parse("sat,sun 00:00-24:00").expect("valid");
        assert_eq!(w.days, [false, false, false, false, false, true, true]);
        let w = Window::parse("fri-mon 22:00-06:00").expect("wraps the week");
        assert_eq!(w.days, [true, false, false, false, true, true, true]);
        assert_eq!(Window::parse("09:00-17:00").expect("daily").days, [true; 7]);
        for bad in [
            "mon 8-18",
            "funday 08:00-09:00",
            "mon 25:00-26:00",
            "mon 08:00-08:00",
            "mon 08:60-09:00",
            "",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        assert_eq!(
            Schedule::parse("Mars/Olympus", &[]).map(|_| ()),
            Err((
                None,
                "unknown time zone 'Mars/Olympus' (use an IANA name such as Europe/Brussels or UTC)".into()
            ))
        );
        assert_eq!(
            Schedule::parse("UTC", &["daily 08:00-09:00".into(), "x".into()])
                .map(|_| ())
                .map_err(|e| e.0),
            Err(Some(1))
        );
    }

    #[test]
    fn overnight_windows_belong_to_their_start_day() {
        // 2026-11-27 is a Friday
        let s = Schedule::parse("UTC", &["fri 22:00-06:00".into()]).expect("valid");
        assert!(!s.contains(at("2026-11-27T21:59:00Z")));
        assert!(s.contains(at("2026-11-27T22:00:00Z")));
        assert!(s.contains(at("2026-11-28T05:59:00Z")), "Saturday morning");
        assert!(!s.contains(at("2026-11-28T06:00:00Z")));
        assert!(
            !s.contains(at("2026-11-28T23:00:00Z")),
            "Saturday night is not Friday's"
        );
        assert!(
            !s.contains(at("2026-11-27T03:00:00Z")),
            "Friday morning belongs to Thursday"
        );
        assert!(Schedule::always().contains(at("2026-11-27T03:00:00Z")));
    }

    #[test]
    fn local_time_follows_daylight_saving() {
        // 18:00 in Brussels is 16:00 UTC in summer (CEST) and 17:00 UTC in winter (CET)
        let s = Schedule::parse("Europe/Brussels", &["daily 18:00-19:00".into()]).expect("valid");
        assert!(s.contains(at("2026-07-01T16:30:00Z")));
        assert!(!s.contains(at("2026-07-01T17:30:00Z")));
        assert!(s.contains(at("2026-12-01T17:30:00Z")));
        assert!(!s.contains(at("2026-12-01T16:30:00Z")));
        // across the autumn change (2026-10-25, 03:00 CEST → 02:00 CET)
        let night = Schedule::parse("Europe/Brussels", &["sat 23:00-04:00".into()]).expect("valid");
        assert!(
            night.contains(at("2026-10-25T01:30:00Z")),
            "02:30 CET on Sunday"
        );
        assert!(!night.contains(at("2026-10-25T03:30:00Z")), "04:30 CET");
    }
}
