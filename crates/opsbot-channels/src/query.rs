//! Query-string parsing for callback URLs, on the decoder in `opsbot_core::form`.
//! WeCom's `echostr` is base64 (`+ / =`), so a `+` must stay a plus: form decoding
//! (which turns it into a space) is wrong there; [`parse_form`] is for real forms. Also
//! the signed part every Tencent callback carries, and its freshness check.

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
    opsbot_core::form::parse_query(raw)
}

pub use opsbot_core::form::parse_form;
