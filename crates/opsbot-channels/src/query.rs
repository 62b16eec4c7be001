//! Query-string parsing for callback URLs. WeCom's `echostr` is base64 (`+ / =`), so a
//! `+` must stay a plus: form decoding (which turns it into a space) is wrong there;
//! [`parse_form`] is for real forms. Also the signed part every Tencent callback
//! carries, and its freshness check.

use crate::error::{bad, CallbackError};
use std::collections::HashMap;
use std::time::Duration;

/// The signed query parameters of a callback: the signature (under `msg_signature` or,
/// for an Official Account, `signature`), timestamp and nonce; the rest as given.
pub(crate) struct Signed {
    pub signature: String,
    pub timestamp: String,
    pub nonce: String,
    pub rest: HashMap<String, String>,
}

/// Splits `raw_query` into its signed part and the rest; every signed parameter is
/// required and non-empty.
pub(crate) fn signed(raw_query: &str, signature_key: &str) -> Result<Signed, CallbackError> {
    let mut q = parse(raw_query).ok_or_else(|| bad("malformed query string"))?;
    let mut take = |k: &str| {
        q.remove(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad(format!("missing query parameter {k}")))
    };
    let signature = take(signature_key)?;
    let timestamp = take("timestamp")?;
    let nonce = take("nonce")?;
    Ok(Signed {
        signature,
        timestamp,
        nonce,
        rest: q,
    })
}

/// Refuses a timestamp more than `window` from now: a captured request replays only
/// that long.
pub(crate) fn fresh(timestamp: &str, window: Duration) -> Result<(), CallbackError> {
    let now = chrono::Utc::now().timestamp();
    opsbot_wecom::check_timestamp(timestamp, now, window.as_secs() as i64).map_err(bad)
}

/// Splits `a=1&b=2` and percent-decodes keys and values (`+` is kept as `+`).
/// Returns `None` when an escape is malformed or the result is not UTF-8.
pub fn parse(raw: &str) -> Option<HashMap<String, String>> {
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
        let q = parse("echostr=ab%2Bc+d%3D%3D&nonce=1").unwrap();
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
        assert!(parse("a=%zz").is_none());
        assert!(parse("a=%4").is_none());
        assert!(parse("a=%ff").is_none(), "not UTF-8");
    }
}
