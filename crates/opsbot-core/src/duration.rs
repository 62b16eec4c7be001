//! Durations as configuration writes them (`90`, `250ms`, `30s`, `10m`, `1h`, `1d`).

/// `90`, `250ms`, `30s`, `10m`, `1h`, `1d` → a duration (a bare number is seconds).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().ok()?;
    let secs = match s[split..].trim() {
        "ms" => return Some(std::time::Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}
