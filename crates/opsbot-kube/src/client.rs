//! A kube-rs client for one configured cluster: from a kubeconfig file and context,
//! the pod's service account, or a URL with a bearer token and CA. Building it does no
//! I/O against the API server, so opsbot starts while a cluster is down.

use crate::config::Connection;
use crate::error::{Error, Result};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::time::Duration;

/// How long a connection attempt may take before the cluster counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The client for `connection`; `cluster` names it in errors.
pub async fn connect(cluster: &str, connection: &Connection) -> Result<kube::Client> {
    let mut config = client_config(connection)
        .await
        .map_err(|e| Error::Config(format!("cluster {cluster}: {e}")))?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    // A request the server does not answer must not hang a chat command; watches are
    // guarded by the watcher's own timeout.
    config.read_timeout = None;
    if config.accept_invalid_certs {
        tracing::warn!(
            cluster,
            "insecure = true: the API server's certificate is not verified (lab only)"
        );
    }
    kube::Client::try_from(config).map_err(|e| Error::Config(format!("cluster {cluster}: {e}")))
}

async fn client_config(c: &Connection) -> std::result::Result<kube::Config, String> {
    if let Some(path) = c.kubeconfig_path() {
        let file = Kubeconfig::read_from(&path)
            .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
        let options = KubeConfigOptions {
            context: c.context.clone(),
            ..KubeConfigOptions::default()
        };
        return kube::Config::from_custom_kubeconfig(file, &options)
            .await
            .map_err(|e| format!("kubeconfig {}: {e}", path.display()));
    }
    if c.in_cluster {
        return kube::Config::incluster().map_err(|e| format!("in-cluster service account: {e}"));
    }
    let url = c.url.as_deref().unwrap_or_default();
    // Written as a kubeconfig so kube-rs reads the token file (and re-reads it when it
    // is rotated) and the CA exactly as it does for kubectl's files.
    let mut user = serde_json::Map::new();
    if let Some(t) = &c.token {
        user.insert("token".into(), t.trim().into());
    }
    if let Some(f) = &c.token_file {
        // kube-rs sends the file's bytes as they are; a token written by hand often ends
        // in a newline, which is no valid header. Such a file is read once, trimmed; a
        // clean one is left to kube-rs, which re-reads it when it is rotated.
        let text =
            std::fs::read_to_string(f).map_err(|e| format!("reading token_file {f}: {e}"))?;
        if text.trim() != text {
            user.insert("token".into(), text.trim().into());
        } else {
            user.insert("tokenFile".into(), f.as_str().into());
        }
    }
    let mut cluster = serde_json::Map::new();
    cluster.insert("server".into(), url.into());
    if let Some(ca) = &c.ca_file {
        cluster.insert("certificate-authority".into(), ca.as_str().into());
    }
    if c.insecure {
        cluster.insert("insecure-skip-tls-verify".into(), true.into());
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    });
    let file = Kubeconfig::from_yaml(&doc.to_string()).map_err(|e| e.to_string())?;
    kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())
}
