//! `application/x-www-form-urlencoded` bodies and query strings, as Open-Falcon's
//! sender (beego httplib) writes them: `+` is a space, `%XX` a byte.

use std::collections::HashMap;

/// Splits `a=1&b=2` into decoded pairs; a later duplicate key wins. `None` when an
/// escape is malformed or the result is not UTF-8.
pub fn parse(raw: &str) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k)?, decode(v)?);
    }
    Some(out)
}

fn decode(s: &str) -> Option<String> {
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
            b'+' => {
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
    fn form_decoding() {
        let f = parse("tos=a%2Cb&content=%5BP0%5D+x%20y&empty=").unwrap();
        assert_eq!(f["tos"], "a,b");
        assert_eq!(f["content"], "[P0] x y");
        assert_eq!(f["empty"], "");
        assert!(parse("a=%zz").is_none());
        assert!(parse("a=%e4%b8").is_none(), "cut UTF-8");
        assert_eq!(
            parse("content=%E5%91%8A%E8%AD%A6").unwrap()["content"],
            "告警"
        );
    }
}
