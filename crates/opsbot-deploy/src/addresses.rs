//! The addresses a project's new hosts may take: single IPv4 addresses and ranges
//! (`10.0.5.10-10.0.5.40`, or `10.0.5.10-40`).

use std::net::Ipv4Addr;

/// Ranges larger than this are refused (a typo such as `10.0.0.1-10.9.0.1`).
const MAX: u32 = 65_536;

/// Every address the entries name, in order, without duplicates.
pub fn expand(entries: &[String]) -> Result<Vec<Ipv4Addr>, String> {
    let mut out = Vec::new();
    for e in entries {
        let e = e.trim();
        let (a, b) = match e.split_once('-') {
            None => {
                let ip: Ipv4Addr = e
                    .parse()
                    .map_err(|_| format!("{e:?} is not an IPv4 address"))?;
                (ip, ip)
            }
            Some((a, b)) => {
                let a: Ipv4Addr = a
                    .trim()
                    .parse()
                    .map_err(|_| format!("{e:?}: {a:?} is not an IPv4 address"))?;
                let b = b.trim();
                let b: Ipv4Addr = match b.parse::<u8>() {
                    Ok(last) => {
                        let o = a.octets();
                        Ipv4Addr::new(o[0], o[1], o[2], last)
                    }
                    Err(_) => b
                        .parse()
                        .map_err(|_| format!("{e:?}: {b:?} is not an IPv4 address"))?,
                };
                (a, b)
            }
        };
        let (lo, hi) = (u32::from(a), u32::from(b));
        if hi < lo {
            return Err(format!("{e:?}: the range ends before it starts"));
        }
        if hi - lo >= MAX {
            return Err(format!("{e:?}: more than {MAX} addresses"));
        }
        for n in lo..=hi {
            let ip = Ipv4Addr::from(n);
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singles_and_ranges_expand_in_order() {
        let v = expand(&[
            "10.0.0.9".into(),
            "10.0.0.10-12".into(),
            "10.0.0.11-10.0.0.13".into(),
        ])
        .unwrap();
        let s: Vec<String> = v.iter().map(|i| i.to_string()).collect();
        assert_eq!(
            s,
            [
                "10.0.0.9",
                "10.0.0.10",
                "10.0.0.11",
                "10.0.0.12",
                "10.0.0.13"
            ]
        );
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        assert!(expand(&["10.0.0.5-3".into()])
            .unwrap_err()
            .contains("ends before"));
        assert!(expand(&["web".into()]).unwrap_err().contains("not an IPv4"));
        assert!(expand(&["10.0.0.1-10.9.0.1".into()])
            .unwrap_err()
            .contains("more than"));
    }
}
