//! JSON-over-HTTPS plumbing shared by the WeCom and WeChat clients: one call, its
//! `{errcode, errmsg}` answer decoded, transport failures turned into errors that name
//! the service and never carry a secret.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The service a client talks to, for error messages and logs.
pub(crate) const WECOM: &str = "WeCom";
pub(crate) const WECHAT: &str = "WeChat";

/// A decoded JSON answer, errcode not yet judged.
pub(crate) struct Reply {
    pub(crate) errcode: i64,
    pub(crate) errmsg: String,
    pub(crate) body: Map<String, Value>,
}

/// A reqwest client with rustls (aws-lc-rs) and the given timeouts.
pub(crate) fn client(timeout: Duration, connect_timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .user_agent(concat!("opsbot-wecom/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::HttpClient(error_chain(&e)))
}

/// Sends `request` and decodes the `{errcode, errmsg, …}` answer. A missing errcode
/// counts as 0 when `errcode_optional` (WeChat's token endpoint answers without one).
pub(crate) async fn execute(
    service: &'static str,
    timeout: Duration,
    api: &'static str,
    request: reqwest::RequestBuilder,
    errcode_optional: bool,
) -> Result<Reply> {
    tracing::debug!(api, service, "calling the API");
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(service, timeout, api, e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::HttpStatus {
            api,
            service,
            status: status.as_u16(),
        });
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| transport_error(service, timeout, api, e))?;
    let invalid = |reason: String| Error::InvalidResponse {
        api,
        service,
        reason,
    };
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("body is not JSON ({e})")))?;
    let Value::Object(body) = value else {
        return Err(invalid("body is not a JSON object".into()));
    };
    let errcode = match body.get("errcode") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        None if errcode_optional => Some(0),
        _ => None,
    }
    .ok_or_else(|| invalid("no integer errcode".into()))?;
    let errmsg = body
        .get("errmsg")
        .and_then(Value::as_str)
        .map(redact_secrets)
        .unwrap_or_default();
    if errcode != 0 {
        tracing::debug!(api, service, errcode, errmsg = %errmsg, "the API returned an error");
    }
    Ok(Reply {
        errcode,
        errmsg,
        body,
    })
}

fn transport_error(
    service: &'static str,
    timeout: Duration,
    api: &'static str,
    error: reqwest::Error,
) -> Error {
    // A connection that could not be made carried no request; anything later may have.
    let maybe_sent = !error.is_connect();
    if error.is_timeout() && maybe_sent {
        return Error::Timeout {
            api,
            service,
            timeout,
        };
    }
    // The URL carries the access token, robot key or response code; drop it, and
    // redact the rest in case a lower layer echoes it.
    Error::Transport {
        api,
        service,
        message: redact_secrets(&error_chain(&error.without_url())),
        maybe_sent,
    }
}

/// Replace the values of `access_token`, `corpsecret`, `secret`, `key` and
/// `response_code` query parameters with `REDACTED`, so a URL can be logged or put in an
/// error.
pub fn redact_secrets(text: &str) -> String {
    const SECRET_PARAMS: [&str; 5] = [
        "access_token=",
        "corpsecret=",
        "secret=",
        "key=",
        "response_code=",
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for param in SECRET_PARAMS {
            if rest.starts_with(param) && !preceded_by_word_char(text, rest) {
                out.push_str(param);
                out.push_str("REDACTED");
                let value_len = rest[param.len()..]
                    .find(|c: char| {
                        matches!(c, '&' | '#' | '"' | '\'' | ')' | ',') || c.is_whitespace()
                    })
                    .unwrap_or(rest.len() - param.len());
                rest = &rest[param.len() + value_len..];
                continue 'scan;
            }
        }
        let ch = rest.chars().next().unwrap_or_default();
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

/// Whether the char before `suffix` (a tail of `text`) is part of a word, so that
/// e.g. `monkey=` is not mistaken for `key=`.
fn preceded_by_word_char(text: &str, suffix: &str) -> bool {
    let offset = text.len() - suffix.len();
    text[..offset]
        .chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// `error: cause: cause ...`, since reqwest's own Display shows only the outer layer.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_secrets("https://h/cgi-bin/message/send?access_token=abc.DEF-1&x=1"),
            "https://h/cgi-bin/message/send?access_token=REDACTED&x=1"
        );
        assert_eq!(
            redact_secrets("gettoken?corpid=ww1&corpsecret=s3 key=k monkey=m"),
            "gettoken?corpid=ww1&corpsecret=REDACTED key=REDACTED monkey=m"
        );
        assert_eq!(
            redact_secrets("token?appid=wx1&secret=s3cr3t&grant_type=client_credential"),
            "token?appid=wx1&secret=REDACTED&grant_type=client_credential"
        );
        assert_eq!(
            redact_secrets("aibot/response?response_code=abc123"),
            "aibot/response?response_code=REDACTED"
        );
        assert_eq!(
            redact_secrets("告警 access_token="),
            "告警 access_token=REDACTED"
        );
    }
}
