//! Percent-decoding of query strings and `application/x-www-form-urlencoded` bodies,
//! for whoever reads them: the chat channels' signed callback queries, the alert
//! gateway's Open-Falcon form. WeCom's `echostr` is base64 (`+ / =`), so in a query a
//! `+` stays a plus; in a form it is a space.

use std::collections::HashMap;

/// Splits `a=1&b=2` and percent-decodes keys and values (`+` is kept as `+`).
/// Returns `None` when an escape is malformed or the result is not UTF-8.
pub fn parse_query(raw: &str) -> Option<HashMap<String, String>> {
    pairs(raw, false)
}

/// The same for `application/x-www-form-urlencoded` (Open-Falcon's alarm form), where
/// `+` is a space.
pub fn parse_form(raw: &str) -> Option<HashMap<String, String>> {
    pairs(raw, true)
}

fn pairs(raw: &str, plus_is_space: bool) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k, plus_is_space)?, decode(v, plus_is_space)?);
    }
    Some(out)
}

fn decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_stays_plus_and_escapes_decode() {
        let q = parse_query("echostr=ab%2Bc+d%3D%3D&nonce=1").unwrap();
        assert_eq!(q["echostr"], "ab+c+d==");
        assert_eq!(q["nonce"], "1");
    }

    #[test]
    fn forms_read_plus_as_space() {
        let f = parse_form("tos=a%2Cb&content=%5BP0%5D+x%20y&empty=").unwrap();
        assert_eq!(f["tos"], "a,b");
        assert_eq!(f["content"], "[P0] x y");
        assert_eq!(f["empty"], "");
        assert_eq!(parse_form("c=%E5%91%8A%E8%AD%A6").unwrap()["c"], "告警");
        assert!(parse_form("a=%e4%b8").is_none(), "cut UTF-8");
    }

    #[test]
    fn malformed_escapes_are_refused() {
        assert!(parse_query("a=%zz").is_none());
        assert!(parse_query("a=%4").is_none());
        assert!(parse_query("a=%ff").is_none(), "not UTF-8");
    }
}
