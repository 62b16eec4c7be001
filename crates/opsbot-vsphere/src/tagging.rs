//! vSphere tags (the vAPI tagging service, `/rest/com/vmware/cis/tagging/…`) as pool
//! tags `category:tag`, beside the custom attributes the SOAP read maps.
//!
//! A session is opened with `POST /rest/com/vmware/cis/session` and the provider's
//! credentials, over the SOAP client's HTTP client (same TLS settings). One pass costs
//! three small requests when nothing changed: the category ids, the tag ids, and the
//! VMs attached to those tags (one `list-attached-objects-on-tags` call for every tag).
//! A tag's or category's name is fetched once, when its id is first seen, and kept in a
//! [`TagCache`] the provider holds across passes; a full read starts the cache over, so a
//! renamed tag shows by the next full read at the latest.

use crate::client::VimClient;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// Why tags could not be read. The sync goes on without them either way.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// The vCenter has no vAPI REST endpoint (HTTP 404): an old vCenter, or a simulator
    /// started without `-rest`.
    #[error("vCenter {url} has no tagging REST endpoint (HTTP 404 at {path})")]
    Unsupported { url: String, path: String },
    /// The endpoint refused (login or permission) or answered something else.
    #[error("vCenter {url} refused the tagging request {path}: HTTP {status} {body}")]
    Refused {
        url: String,
        path: String,
        status: u16,
        body: String,
    },
    /// No answer (connection, timeout, TLS).
    #[error("vCenter {url} tagging request {path} failed: {message}")]
    Transport {
        url: String,
        path: String,
        message: String,
    },
    /// An answer that is not the JSON the API documents.
    #[error("vCenter {url} answered {path} with unexpected JSON: {message}")]
    Protocol {
        url: String,
        path: String,
        message: String,
    },
}

/// The tag names seen so far, by id, so only new ids are fetched one by one.
#[derive(Debug, Default, Clone)]
pub struct TagCache {
    categories: HashMap<String, String>,
    /// tag id → (tag name, category id)
    tags: HashMap<String, (String, String)>,
}

impl TagCache {
    /// How many names are known (tests check that an unchanged pass fetches none).
    pub fn len(&self) -> usize {
        self.categories.len() + self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Each tagged VM's tags (`category:tag`, sorted), by MoRef value (`vm-42`).
pub type VmTags = BTreeMap<String, Vec<String>>;

/// A vAPI session on one vCenter.
pub struct TagClient {
    http: reqwest::Client,
    /// `https://vc/rest`
    base: String,
    /// `https://vc` for messages.
    url: String,
    username: String,
    password: String,
    timeout: Duration,
    session: tokio::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for TagClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TagClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

const SESSION_HEADER: &str = "vmware-api-session-id";

#[derive(Deserialize)]
struct Value<T> {
    value: T,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct TagInfo {
    name: String,
    category_id: String,
}

#[derive(Deserialize)]
struct Attached {
    tag_id: String,
    /// `null` for a tag on nothing (vcsim), absent or `[]` elsewhere.
    #[serde(default)]
    object_ids: Option<Vec<ObjectId>>,
}

#[derive(Deserialize)]
struct ObjectId {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

impl TagClient {
    /// A client beside `soap` (same HTTP client, so the same TLS settings and timeouts).
    pub fn new(soap: &VimClient) -> Self {
        Self::on(
            soap.http().clone(),
            soap.url(),
            soap.username(),
            soap.password(),
            soap.timeout(),
        )
    }

    /// A client for the vCenter of the SDK URL `sdk_url` (`https://vc/sdk`).
    fn on(
        http: reqwest::Client,
        sdk_url: &str,
        username: &str,
        password: &str,
        timeout: Duration,
    ) -> Self {
        let mut root = reqwest::Url::parse(sdk_url).expect("the SOAP URL was parsed before");
        root.set_path("");
        root.set_query(None);
        let url = root.as_str().trim_end_matches('/').to_string();
        TagClient {
            http,
            base: format!("{url}/rest"),
            url,
            username: username.to_string(),
            password: password.to_string(),
            timeout,
            session: tokio::sync::Mutex::new(None),
        }
    }

    fn refused(&self, path: &str, status: reqwest::StatusCode, body: &str) -> TagError {
        if status == reqwest::StatusCode::NOT_FOUND {
            return TagError::Unsupported {
                url: self.url.clone(),
                path: path.to_string(),
            };
        }
        TagError::Refused {
            url: self.url.clone(),
            path: path.to_string(),
            status: status.as_u16(),
            body: body.chars().take(200).collect(),
        }
    }

    fn transport(&self, path: &str, e: reqwest::Error) -> TagError {
        let message = if e.is_timeout() {
            format!("no answer within {}s", self.timeout.as_secs())
        } else {
            e.to_string()
        };
        TagError::Transport {
            url: self.url.clone(),
            path: path.to_string(),
            message,
        }
    }

    async fn login(&self) -> Result<String, TagError> {
        let path = "/com/vmware/cis/session";
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.username, Some(&self.password))
            // The id comes back in the body; no cookie wanted.
            .header("vmware-use-header-authn", "true")
            .send()
            .await
            .map_err(|e| self.transport(path, e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport(path, e))?;
        if !status.is_success() {
            return Err(self.refused(path, status, &text));
        }
        let v: Value<String> = serde_json::from_str(&text).map_err(|e| TagError::Protocol {
            url: self.url.clone(),
            path: path.to_string(),
            message: e.to_string(),
        })?;
        Ok(v.value)
    }

    /// One call with the session, logging in first or again after a 401 (once).
    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, TagError> {
        let mut guard = self.session.lock().await;
        for attempt in 0..2 {
            let id = match guard.as_ref() {
                Some(id) => id.clone(),
                None => {
                    let id = self.login().await?;
                    *guard = Some(id.clone());
                    id
                }
            };
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .header(SESSION_HEADER, &id);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| self.transport(path, e))?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| self.transport(path, e))?;
            if status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                // An expired session: log in again, once.
                *guard = None;
                continue;
            }
            if !status.is_success() {
                return Err(self.refused(path, status, &text));
            }
            let v: Value<T> = serde_json::from_str(&text).map_err(|e| TagError::Protocol {
                url: self.url.clone(),
                path: path.to_string(),
                message: e.to_string(),
            })?;
            return Ok(v.value);
        }
        unreachable!("the second attempt returns")
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, TagError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Every VM's tags, fetching only the names of tags and categories `cache` does not
    /// know yet (and forgetting those that are gone).
    pub async fn vm_tags(&self, cache: &mut TagCache) -> Result<VmTags, TagError> {
        // Nullable in some vCenter versions' answers when there are none.
        let categories: Option<Vec<String>> = self.get("/com/vmware/cis/tagging/category").await?;
        let tags: Option<Vec<String>> = self.get("/com/vmware/cis/tagging/tag").await?;
        let (categories, tags) = (categories.unwrap_or_default(), tags.unwrap_or_default());
        let live: HashSet<&String> = categories.iter().chain(&tags).collect();
        cache.categories.retain(|id, _| live.contains(id));
        cache.tags.retain(|id, _| live.contains(id));
        for id in &categories {
            if !cache.categories.contains_key(id) {
                let c: Named = self
                    .get(&format!("/com/vmware/cis/tagging/category/id:{id}"))
                    .await?;
                cache.categories.insert(id.clone(), c.name);
            }
        }
        for id in &tags {
            if !cache.tags.contains_key(id) {
                let t: TagInfo = self
                    .get(&format!("/com/vmware/cis/tagging/tag/id:{id}"))
                    .await?;
                cache.tags.insert(id.clone(), (t.name, t.category_id));
            }
        }
        let mut by_vm = VmTags::new();
        if tags.is_empty() {
            return Ok(by_vm);
        }
        let attached: Option<Vec<Attached>> = self
            .call(
                reqwest::Method::POST,
                "/com/vmware/cis/tagging/tag-association?~action=list-attached-objects-on-tags",
                Some(&serde_json::json!({ "tag_ids": tags })),
            )
            .await?;
        for a in attached.unwrap_or_default() {
            let Some((tag, category)) = cache.tags.get(&a.tag_id) else {
                continue;
            };
            // A tag whose category went between the two lists is skipped this pass.
            let Some(category) = cache.categories.get(category) else {
                continue;
            };
            let label = format!("{category}:{tag}");
            let objects = a.object_ids.unwrap_or_default();
            for o in objects.iter().filter(|o| o.kind == "VirtualMachine") {
                by_vm.entry(o.id.clone()).or_default().push(label.clone());
            }
        }
        for list in by_vm.values_mut() {
            list.sort();
            list.dedup();
        }
        Ok(by_vm)
    }
}

/// Adds each VM's vSphere tags to its own (custom attributes), sorted, once each.
pub fn merge(vm: &mut opsbot_core::Vm, tags: &VmTags) {
    if let Some(extra) = tags.get(&vm.id) {
        vm.tags.extend(extra.iter().cloned());
        vm.tags.sort();
        vm.tags.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    /// A vAPI endpoint that expires the first session after one call and counts requests.
    async fn fake(requests: Arc<AtomicUsize>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let logins = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                let (requests, logins) = (requests.clone(), logins.clone());
                tokio::spawn(async move {
                    let mut r = BufReader::new(sock);
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let target = line.split(' ').nth(1).unwrap_or("").to_string();
                        let (mut len, mut session) = (0usize, String::new());
                        loop {
                            let mut h = String::new();
                            r.read_line(&mut h).await.unwrap();
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            let (k, v) = h.split_once(':').unwrap();
                            match k.to_ascii_lowercase().as_str() {
                                "content-length" => len = v.trim().parse().unwrap(),
                                SESSION_HEADER => session = v.trim().to_string(),
                                _ => {}
                            }
                        }
                        let mut body = vec![0; len];
                        r.read_exact(&mut body).await.unwrap();
                        requests.fetch_add(1, Ordering::SeqCst);
                        let path = target.trim_start_matches("/rest/com/vmware/cis");
                        let (status, json) = if path == "/session" {
                            let n = logins.fetch_add(1, Ordering::SeqCst) + 1;
                            ("200 OK", format!(r#"{{"value":"s{n}"}}"#))
                        } else if session == "s1" && path == "/tagging/category" {
                            // The first session expired before its first use.
                            ("401 Unauthorized", "{}".to_string())
                        } else {
                            let v = match path {
                                "/tagging/category" => r#"["c1"]"#,
                                "/tagging/category/id:c1" => r#"{"name":"env"}"#,
                                "/tagging/tag" => r#"["t1","t2"]"#,
                                "/tagging/tag/id:t1" => r#"{"name":"prod","category_id":"c1"}"#,
                                "/tagging/tag/id:t2" => r#"{"name":"test","category_id":"c1"}"#,
                                _ if path.starts_with("/tagging/tag-association") => {
                                    r#"[{"tag_id":"t1","object_ids":[{"id":"vm-1","type":"VirtualMachine"},{"id":"host-9","type":"HostSystem"}]},{"tag_id":"t2","object_ids":null}]"#
                                }
                                _ => "null",
                            };
                            ("200 OK", format!(r#"{{"value":{v}}}"#))
                        };
                        let resp = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
                            json.len()
                        );
                        r.get_mut().write_all(resp.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        format!("http://{addr}/sdk")
    }

    #[tokio::test]
    async fn logs_in_again_once_and_reads_only_new_names() {
        let requests = Arc::new(AtomicUsize::new(0));
        let url = fake(requests.clone()).await;
        let c = TagClient::on(
            reqwest::Client::new(),
            &url,
            "u",
            "p",
            Duration::from_secs(10),
        );
        let mut cache = TagCache::default();
        let tags = c.vm_tags(&mut cache).await.unwrap();
        assert_eq!(tags.len(), 1, "hosts are not VMs: {tags:?}");
        assert_eq!(tags["vm-1"], ["env:prod"]);
        assert_eq!(cache.len(), 3);
        // Two logins, the refused call and its retry, two lists, three names, one association.
        assert_eq!(requests.load(Ordering::SeqCst), 9);
        // The next pass: the two lists and the association, no names.
        c.vm_tags(&mut cache).await.unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 12);
    }

    #[tokio::test]
    async fn no_endpoint_is_unsupported() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
            }
        });
        let c = TagClient::on(
            reqwest::Client::new(),
            &format!("http://{addr}/sdk"),
            "u",
            "p",
            Duration::from_secs(10),
        );
        let e = c.vm_tags(&mut TagCache::default()).await.unwrap_err();
        assert!(matches!(e, TagError::Unsupported { .. }), "{e}");
        assert!(e.to_string().contains("HTTP 404"), "{e}");
    }
}
