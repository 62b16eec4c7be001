//! `pods/{name}/log`: deterministic text, 500 lines per container.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::status::ApiError;

const LINES: usize = 500;

/// Query parameters of a log request.
#[derive(Debug, Default)]
pub(crate) struct LogQuery {
    pub container: Option<String>,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
    pub timestamps: bool,
}

/// The log text of `pod`, as the kubelet would stream it (a finished read, no follow).
pub(crate) fn render(pod: &Value, q: &LogQuery) -> Result<String, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let container = match &q.container {
        Some(c) if containers.contains(&c.as_str()) => c.clone(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {pod_name}"
            )))
        }
        None if containers.len() == 1 => containers[0].to_string(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                containers.join(" ")
            )))
        }
    };
    let start: DateTime<Utc> = pod["status"]["startTime"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    let first = LINES - q.tail_lines.unwrap_or(LINES).min(LINES);
    let mut out = String::new();
    for n in first + 1..=LINES {
        let at = start + chrono::Duration::milliseconds(n as i64);
        let stamp = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if q.timestamps {
            out.push_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
            out.push(' ');
        }
        out.push_str(&format!(
            "{stamp} {pod_name} line {n} [{container}] GET /healthz 200 {}ms\n",
            n % 17 + 1
        ));
    }
    if let Some(limit) = q.limit_bytes {
        let mut cut = limit.min(out.len());
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    Ok(out)
}
