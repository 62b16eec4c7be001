//! The time zone people read times in (`[chat] timezone`): an IANA name
//! (`Asia/Shanghai`), a fixed offset (`+08:00`, `UTC+8`, `UTC`), or the machine's own
//! zone. Times are always shown with their zone (`UTC+8`), never bare.

use chrono::{DateTime, FixedOffset, Offset, TimeZone, Utc};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The machine's zone (`TZ`, else `/etc/localtime`).
    #[default]
    Local,
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `local`, `UTC`, `+08:00` / `+0800` / `+8` / `UTC+8` / `UTC-03:30`, or an IANA
    /// name such as `Asia/Shanghai`.
    pub fn parse(s: &str) -> Result<Zone, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("local") {
            return Ok(Zone::Local);
        }
        if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") {
            return Ok(Zone::Fixed(FixedOffset::east_opt(0).expect("zero offset")));
        }
        let offset = t
            .strip_prefix("UTC")
            .or_else(|| t.strip_prefix("utc"))
            .or_else(|| t.strip_prefix("GMT"))
            .unwrap_or(t);
        if offset.starts_with(['+', '-']) {
            return parse_offset(offset)
                .map(Zone::Fixed)
                .ok_or_else(|| format!("{s:?} is not an offset like +08:00 (-12:00 to +14:00)"));
        }
        chrono_tz::Tz::from_str(t)
            .map(Zone::Named)
            .map_err(|_| format!("{s:?} is not a time zone: use an IANA name like \"Asia/Shanghai\", an offset like \"+08:00\", or \"local\""))
    }

    /// The offset from UTC at `at`.
    pub fn offset_at(&self, at: DateTime<Utc>) -> FixedOffset {
        match self {
            Zone::Local => chrono::Local
                .offset_from_utc_datetime(&at.naive_utc())
                .fix(),
            Zone::Fixed(o) => *o,
            Zone::Named(tz) => tz.offset_from_utc_datetime(&at.naive_utc()).fix(),
        }
    }

    /// `t` in this zone, formatted with a chrono format string (no zone added).
    pub fn format(&self, t: DateTime<Utc>, fmt: &str) -> String {
        t.with_timezone(&self.offset_at(t)).format(fmt).to_string()
    }

    /// How the zone reads beside a time: `UTC`, `UTC+8`, `UTC-3:30`.
    pub fn label(&self, at: DateTime<Utc>) -> String {
        let secs = self.offset_at(at).local_minus_utc();
        if secs == 0 {
            return "UTC".into();
        }
        let sign = if secs < 0 { '-' } else { '+' };
        let (h, m) = (secs.abs() / 3600, secs.abs() % 3600 / 60);
        if m == 0 {
            format!("UTC{sign}{h}")
        } else {
            format!("UTC{sign}{h}:{m:02}")
        }
    }

    /// `MM-DD HH:MM` in this zone, followed by the zone: `12-01 09:10 UTC+8`.
    pub fn stamp(&self, t: DateTime<Utc>) -> String {
        format!("{} {}", self.format(t, "%m-%d %H:%M"), self.label(t))
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Local => f.write_str("local"),
            Zone::Fixed(o) => write!(f, "{o}"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

/// `+08:00`, `+0800`, `+8`, `-03:30`.
fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let all_digits =
        |x: &str| !x.is_empty() && x.len() <= 2 && x.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(h) || !all_digits(m) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m >= 60 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn names_offsets_and_labels() {
        let t = at("2026-01-15T01:10:00Z");
        let sh = Zone::parse("Asia/Shanghai").unwrap();
        assert_eq!(sh.stamp(t), "01-15 09:10 UTC+8");
        for s in ["+08:00", "+0800", "+8", "UTC+8", "utc+08:00"] {
            assert_eq!(Zone::parse(s).unwrap().stamp(t), "01-15 09:10 UTC+8", "{s}");
        }
        assert_eq!(Zone::parse("UTC").unwrap().stamp(t), "01-15 01:10 UTC");
        assert_eq!(Zone::parse("Asia/Kolkata").unwrap().label(t), "UTC+5:30");
        assert_eq!(
            Zone::parse("-03:30").unwrap().stamp(t),
            "01-14 21:40 UTC-3:30"
        );
        // Summer time follows the date.
        let ny = Zone::parse("America/New_York").unwrap();
        assert_eq!(ny.label(t), "UTC-5");
        assert_eq!(ny.label(at("2026-07-15T12:00:00Z")), "UTC-4");
        assert_eq!(Zone::parse("local").unwrap(), Zone::Local);
    }

    #[test]
    fn nonsense_is_refused_with_the_reason() {
        for s in ["Mars/Olympus", "+25:00", "+8:75", "08:00", ""] {
            let e = Zone::parse(s).unwrap_err();
            assert!(e.contains("time zone") || e.contains("offset"), "{s}: {e}");
        }
    }
}
