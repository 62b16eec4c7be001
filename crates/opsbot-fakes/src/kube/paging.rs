//! Continue tokens of paginated lists: where the next page starts, and their expiry.

use base64::Engine as _;
use serde_json::{json, Value};

use super::status::ApiError;

pub(crate) fn encode_continue(rv: u64, last: &(String, String)) -> String {
    let token = json!({"rv": rv, "ns": last.0, "name": last.1});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a \
    consistent list result. You can start a new list without the continue parameter, or use \
    the continue token in this response to retrieve the remainder of the results. Continuing \
    with the provided token results in an inconsistent list - objects that were created, \
    modified, or deleted between the time the first chunk was returned and now may show up in \
    the list.";

pub(crate) fn decode_continue(
    token: &str,
    oldest: u64,
) -> Result<(u64, Option<(String, String)>), ApiError> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    if rv < oldest {
        return Err(ApiError::expired(CONTINUE_EXPIRED));
    }
    let ns = v["ns"].as_str().unwrap_or("").to_string();
    let name = v["name"].as_str().unwrap_or("").to_string();
    Ok((rv, Some((ns, name))))
}
