//! Release windows: when an approved order may start (`Mon-Fri 10:00-17:00`,
//! `Sat 09:00-12:00`, `22:00-06:00` every day, crossing midnight).

use chrono::{DateTime, Datelike, NaiveTime, Utc};
use opsbot_core::Zone;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Days the window opens on (Mon = 0); all seven when none was given.
    days: [bool; 7],
    start: NaiveTime,
    end: NaiveTime,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(s: &str) -> Result<usize, String> {
    let l = s.trim().to_lowercase();
    DAYS.iter()
        .position(|d| l.starts_with(d))
        .ok_or_else(|| format!("{s:?} is not a weekday (Mon … Sun)"))
}

fn time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| format!("{s:?} is not a time (HH:MM)"))
}

impl Window {
    pub fn parse(s: &str) -> Result<Window, String> {
        let s = s.trim();
        let (days_part, times) = match s.rsplit_once(' ') {
            Some((d, t)) => (Some(d), t),
            None => (None, s),
        };
        let mut days = [days_part.is_none(); 7];
        if let Some(d) = days_part {
            for part in d.split(',') {
                match part.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (day(a)?, day(b)?);
                        let mut i = a;
                        loop {
                            days[i] = true;
                            if i == b {
                                break;
                            }
                            i = (i + 1) % 7;
                        }
                    }
                    None => days[day(part)?] = true,
                }
            }
        }
        let (a, b) = times.split_once('-').ok_or_else(|| {
            format!("{s:?}: write the hours as HH:MM-HH:MM, e.g. \"Mon-Fri 10:00-17:00\"")
        })?;
        let (start, end) = (time(a)?, time(b)?);
        if start == end {
            return Err(format!("{s:?}: the window is empty"));
        }
        Ok(Window { days, start, end })
    }

    /// Whether `at` (read in `zone`) is inside the window. A window crossing midnight
    /// belongs to the day it opens on.
    pub fn contains(&self, at: DateTime<Utc>, zone: &Zone) -> bool {
        let local = at.with_timezone(&zone.offset_at(at));
        let t = local.time();
        let today = local.weekday().num_days_from_monday() as usize;
        if self.start < self.end {
            self.days[today] && t >= self.start && t < self.end
        } else {
            let yesterday = (today + 6) % 7;
            (self.days[today] && t >= self.start) || (self.days[yesterday] && t < self.end)
        }
    }
}

/// Whether `at` is inside any of `windows` (no windows: always).
pub fn open(windows: &[String], at: DateTime<Utc>, zone: &Zone) -> bool {
    windows.is_empty()
        || windows
            .iter()
            .filter_map(|w| Window::parse(w).ok())
            .any(|w| w.contains(at, zone))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn weekday_windows_open_and_close() {
        let z = Zone::parse("UTC").unwrap();
        let w = Window::parse("Mon-Fri 10:00-17:00").unwrap();
        // 2026-12-07 is a Monday.
        assert!(w.contains(at(2026, 12, 7, 10, 0), &z));
        assert!(!w.contains(at(2026, 12, 7, 17, 0), &z));
        assert!(!w.contains(at(2026, 12, 12, 11, 0), &z), "Saturday");
    }

    #[test]
    fn windows_cross_midnight_and_read_the_zone() {
        let z = Zone::parse("Asia/Shanghai").unwrap();
        let w = Window::parse("Fri 22:00-02:00").unwrap();
        // Friday 23:00 and Saturday 01:00 in Shanghai.
        assert!(w.contains(at(2026, 12, 11, 15, 0), &z));
        assert!(w.contains(at(2026, 12, 11, 17, 0), &z));
        assert!(
            !w.contains(at(2026, 12, 12, 17, 0), &z),
            "Saturday night is not Friday's"
        );
    }

    #[test]
    fn bad_windows_say_why() {
        assert!(Window::parse("Funday 10:00-11:00")
            .unwrap_err()
            .contains("weekday"));
        assert!(Window::parse("10-11").unwrap_err().contains("time"));
        assert!(Window::parse("10:00-10:00").unwrap_err().contains("empty"));
    }
}
