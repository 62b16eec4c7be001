//! A pod's log tail, cut to what a phone shows: at most the lines asked (capped at
//! 500) and `log_bytes` bytes, keeping the newest lines.

use crate::cluster::Cluster;
use crate::config::LOG_LINES_CAP;
use crate::error::Error;
use crate::pool::PodInfo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::Api;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogTail {
    pub namespace: String,
    pub pod: String,
    pub lines: Vec<String>,
    /// Older lines were left out to fit `log_bytes`.
    pub cut: bool,
}

/// The last `lines` lines (the cluster's default when `None`) of `pod`.
pub async fn logs(
    cluster: &Cluster,
    pod: &PodInfo,
    lines: Option<usize>,
) -> Result<LogTail, Error> {
    let settings = &cluster.settings;
    let lines = lines.unwrap_or(settings.log_lines).clamp(1, LOG_LINES_CAP);
    let params = LogParams {
        tail_lines: Some(lines as i64),
        ..LogParams::default()
    };
    let text = Api::<Pod>::namespaced(cluster.client.clone(), &pod.namespace)
        .logs(&pod.name, &params)
        .await?;
    let (kept, cut) = fit(&text, lines, settings.log_bytes);
    Ok(LogTail {
        namespace: pod.namespace.clone(),
        pod: pod.name.clone(),
        lines: kept,
        cut,
    })
}

/// The newest lines of `text`: at most `lines`, and `bytes` bytes together.
pub fn fit(text: &str, lines: usize, bytes: usize) -> (Vec<String>, bool) {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut kept = Vec::new();
    let mut size = 0;
    let mut cut = false;
    for line in all[start..].iter().rev() {
        let len = line.len() + 1;
        if size + len > bytes {
            cut = true;
            break;
        }
        size += len;
        kept.push((*line).to_string());
    }
    kept.reverse();
    (kept, cut)
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn keeps_the_newest_lines_within_both_caps() {
        let text = "a1\nb22\nc333\nd4444\n";
        assert_eq!(
            fit(text, 2, 100),
            (vec!["c333".into(), "d4444".into()], false)
        );
        assert_eq!(
            fit(text, 10, 11),
            (vec!["c333".into(), "d4444".into()], true)
        );
        assert_eq!(fit("", 5, 100), (Vec::<String>::new(), false));
    }
}
