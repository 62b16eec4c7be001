//! The vim25 SOAP session: transport (reqwest + rustls), login and the session cookie,
//! transparent re-login, fault mapping, the property collector and task polling.
//!
//! Requests are built as strings in WSDL element order (a real vCenter rejects other
//! orders); answers are parsed into [`Node`] trees. See `VSPHERE-SOAP.md` for the wire
//! details this follows.

use crate::error::{Error, Result};
use crate::xml::{self, escape, Node};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A managed object reference. The value is opaque (vcsim datastores contain `/` and `@`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MoRef {
    pub kind: String,
    pub value: String,
}

impl MoRef {
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        MoRef {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// `<element type="Kind">value</element>`, escaped.
    pub fn to_xml(&self, element: &str) -> String {
        format!(
            "<{element} type=\"{}\">{}</{element}>",
            escape(&self.kind),
            escape(&self.value)
        )
    }
}

impl std::fmt::Display for MoRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// How to reach one vCenter.
#[derive(Clone)]
pub struct ClientConfig {
    /// The SDK endpoint, `https://vc/sdk`. User info in the URL is ignored (never logged).
    pub url: String,
    pub username: String,
    pub password: String,
    /// Accept any certificate (self-signed lab vCenters). Off by default.
    pub insecure_tls: bool,
    /// An extra PEM root (bundle) to trust, e.g. the vCenter's VMCA root.
    pub ca_file: Option<PathBuf>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How long to wait for one vCenter task (a clone of a big template takes a while)
    /// before giving up on it; the task itself runs on in vCenter.
    pub task_timeout: Duration,
}

impl ClientConfig {
    pub fn new(
        url: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        ClientConfig {
            url: url.into(),
            username: username.into(),
            password: password.into(),
            insecure_tls: false,
            ca_file: None,
            timeout: Duration::from_secs(60),
            task_timeout: Duration::from_secs(3 * 3600),
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("insecure_tls", &self.insecure_tls)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The parts of `ServiceContent` this crate uses.
#[derive(Debug, Clone)]
pub struct ServiceContent {
    pub root_folder: MoRef,
    pub property_collector: MoRef,
    pub view_manager: MoRef,
    pub session_manager: MoRef,
    pub customization_spec_manager: Option<MoRef>,
    pub task_manager: Option<MoRef>,
    /// Custom attributes (the pool's tags); absent on a standalone host.
    pub custom_fields_manager: Option<MoRef>,
    /// `about.apiVersion`, e.g. `6.5`, `8.0.2.0`; sent as SOAPAction `urn:vim25/<v>`.
    pub api_version: String,
    /// `VirtualCenter` or `HostAgent`.
    pub api_type: String,
    pub instance_uuid: String,
    pub full_name: String,
}

impl ServiceContent {
    fn from_node(rv: &Node) -> Result<Self> {
        let mo = |name: &str| {
            rv.child(name)
                .and_then(Node::moref)
                .ok_or_else(|| Error::Protocol(format!("ServiceContent without {name}")))
        };
        let about = |name: &str| {
            rv.text_at(&format!("about.{name}"))
                .unwrap_or("")
                .to_string()
        };
        Ok(ServiceContent {
            root_folder: mo("rootFolder")?,
            property_collector: mo("propertyCollector")?,
            view_manager: mo("viewManager")?,
            session_manager: mo("sessionManager")?,
            customization_spec_manager: rv.child("customizationSpecManager").and_then(Node::moref),
            task_manager: rv.child("taskManager").and_then(Node::moref),
            custom_fields_manager: rv.child("customFieldsManager").and_then(Node::moref),
            api_version: Some(about("apiVersion"))
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "6.5".to_string()),
            api_type: about("apiType"),
            instance_uuid: about("instanceUuid"),
            full_name: about("fullName"),
        })
    }
}

/// One object's properties from the property collector. Unset properties are absent.
#[derive(Debug, Clone)]
pub struct ObjectContent {
    pub obj: MoRef,
    /// Property path → `<val>` node.
    pub props: HashMap<String, Node>,
}

impl ObjectContent {
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.props.get(path)
    }

    /// The text of a property, when set.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.props.get(path).map(|n| n.text.as_str())
    }
}

/// A logged-in vim25 session. Cheap to clone; clones share the session.
#[derive(Clone)]
pub struct VimClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for VimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VimClient")
            .field("url", &self.inner.url)
            .field("user", &self.inner.cfg.username)
            .field("api_version", &self.inner.service.api_version)
            .finish()
    }
}

struct Inner {
    http: reqwest::Client,
    cfg: ClientConfig,
    /// The endpoint without user info: used for requests and in every message.
    url: String,
    service: ServiceContent,
    cookie: Mutex<Option<String>>,
    /// Serialises re-logins so concurrent callers hitting an expired session log in once.
    relogin: tokio::sync::Mutex<()>,
}

impl Inner {
    /// The session cookie. A panic while it was held cannot leave it half-written (it is
    /// replaced whole), so a poisoned lock still holds a usable value.
    fn cookie_slot(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.cookie
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

const SOAP_HEAD: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
    r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" "#,
    r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#
);
const SOAP_TAIL: &str = "</soapenv:Body></soapenv:Envelope>";
const COOKIE_NAME: &str = "vmware_soap_session";

/// The answer to one POST before fault handling.
struct Answer {
    body: Node,
    set_cookie: Option<String>,
}

impl VimClient {
    /// Connects: RetrieveServiceContent, then Login. Keeps the session cookie.
    pub async fn connect(cfg: ClientConfig) -> Result<Self> {
        let url = sanitize_url(&cfg.url)?;
        let http = build_http(&cfg, &url)?;
        let this = MoRef::new("ServiceInstance", "ServiceInstance");
        let body = format!(
            r#"<RetrieveServiceContent xmlns="urn:vim25">{}</RetrieveServiceContent>"#,
            this.to_xml("_this")
        );
        let answer = post(&http, &url, "6.5", &body, None, cfg.timeout).await?;
        let response = into_response(answer.body, "RetrieveServiceContent")?;
        let rv = response
            .child("returnval")
            .ok_or_else(|| Error::Protocol("RetrieveServiceContent without returnval".into()))?;
        let service = ServiceContent::from_node(rv)?;
        let client = VimClient {
            inner: Arc::new(Inner {
                http,
                cfg,
                url,
                service,
                cookie: Mutex::new(None),
                relogin: tokio::sync::Mutex::new(()),
            }),
        };
        client.login().await?;
        tracing::info!(url = %client.inner.url, api = %client.inner.service.api_version, "vCenter session opened");
        Ok(client)
    }

    pub fn service(&self) -> &ServiceContent {
        &self.inner.service
    }

    /// The endpoint (without user info).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    pub fn username(&self) -> &str {
        &self.inner.cfg.username
    }

    /// For the vAPI REST client beside this one ([`crate::tagging`]): same credentials.
    pub(crate) fn password(&self) -> &str {
        &self.inner.cfg.password
    }

    /// The HTTP client (TLS settings, timeouts), shared with the vAPI REST client.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The per-request timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.inner.cfg.timeout
    }

    /// The current session cookie value (for tests and diagnostics).
    pub fn session_cookie(&self) -> Option<String> {
        self.inner.cookie_slot().clone()
    }

    /// Replaces the session cookie (tests use it to simulate an expired session).
    pub fn set_session_cookie(&self, cookie: Option<String>) {
        *self.inner.cookie_slot() = cookie;
    }

    async fn login(&self) -> Result<()> {
        let cfg = &self.inner.cfg;
        let login_error = |message: String| Error::Login {
            url: self.inner.url.clone(),
            user: cfg.username.clone(),
            message,
        };
        let body = format!(
            r#"<Login xmlns="urn:vim25">{}<userName>{}</userName><password>{}</password></Login>"#,
            self.inner.service.session_manager.to_xml("_this"),
            escape(&cfg.username),
            escape(&cfg.password)
        );
        // Login on a live session is itself a fault, so log in without the old cookie.
        let answer = post(
            &self.inner.http,
            &self.inner.url,
            &self.inner.service.api_version,
            &body,
            None,
            cfg.timeout,
        )
        .await?;
        let cookie = answer.set_cookie.clone();
        match into_response(answer.body, "Login") {
            Ok(_) => {}
            Err(Error::Fault { kind, message }) => {
                let message = if message == kind || message.is_empty() {
                    kind
                } else {
                    format!("{kind}: {message}")
                };
                return Err(login_error(message));
            }
            Err(e) => return Err(e),
        }
        let cookie = cookie.ok_or_else(|| {
            Error::Protocol(format!(
                "vCenter {} accepted the login but set no {COOKIE_NAME} cookie",
                self.inner.url
            ))
        })?;
        *self.inner.cookie_slot() = Some(cookie);
        Ok(())
    }

    /// Logs in again unless another caller already did since `stale` was sent.
    async fn relogin(&self, stale: Option<&str>) -> Result<()> {
        let _guard = self.inner.relogin.lock().await;
        let current = self.session_cookie();
        if current.is_some() && current.as_deref() != stale {
            return Ok(());
        }
        tracing::info!(url = %self.inner.url, "vCenter session expired; logging in again");
        self.login().await
    }

    /// Calls one vim25 method and returns its `<{method}Response>` element.
    ///
    /// `args_xml` follows `_this`, in WSDL order. A `NotAuthenticated` answer (an expired
    /// or logged-out session) triggers one re-login and one retry.
    pub async fn invoke(&self, method: &str, this: &MoRef, args_xml: &str) -> Result<Node> {
        let body = format!(
            r#"<{method} xmlns="urn:vim25">{}{args_xml}</{method}>"#,
            this.to_xml("_this")
        );
        let mut retried = false;
        loop {
            let cookie = self.session_cookie();
            let answer = post(
                &self.inner.http,
                &self.inner.url,
                &self.inner.service.api_version,
                &body,
                cookie.as_deref(),
                self.inner.cfg.timeout,
            )
            .await?;
            let result = into_response(answer.body, method).and_then(|r| {
                // Without a session vcsim answers property reads with a NotAuthenticated
                // fault per object instead of a SOAP fault.
                if method.contains("RetrieveProperties") && has_missing_not_authenticated(&r) {
                    Err(Error::Fault {
                        kind: "NotAuthenticated".into(),
                        message: "session is not authenticated".into(),
                    })
                } else {
                    Ok(r)
                }
            });
            match result {
                Err(e) if e.is_fault("NotAuthenticated") && !retried && method != "Logout" => {
                    retried = true;
                    self.relogin(cookie.as_deref()).await?;
                }
                other => return other,
            }
        }
    }

    /// Runs one PropertyFilterSpec (`<specSet>…</specSet>`, given whole) through
    /// RetrievePropertiesEx, following the continuation token to the end.
    ///
    /// vcsim 0.24.2 never pages and lacks `ContinueRetrievePropertiesEx`; a
    /// `MethodNotFound` there ends the loop with what was read.
    pub async fn retrieve_properties(
        &self,
        spec_set_xml: &str,
        max_objects: Option<u32>,
    ) -> Result<Vec<ObjectContent>> {
        let pc = &self.inner.service.property_collector;
        let options = match max_objects {
            Some(n) => format!("<options><maxObjects>{n}</maxObjects></options>"),
            None => "<options></options>".to_string(),
        };
        let first = self
            .invoke(
                "RetrievePropertiesEx",
                pc,
                &format!("{spec_set_xml}{options}"),
            )
            .await?;
        let mut out = Vec::new();
        let mut token = read_objects(first, &mut out)?;
        while let Some(t) = token.take() {
            let args = format!("<token>{}</token>", escape(&t));
            match self.invoke("ContinueRetrievePropertiesEx", pc, &args).await {
                Ok(page) => token = read_objects(page, &mut out)?,
                Err(e) if e.is_fault("MethodNotFound") => {
                    tracing::warn!(url = %self.inner.url, "ContinueRetrievePropertiesEx not implemented; result may be partial");
                    break;
                }
                Err(e) => {
                    let _ = self.invoke("CancelRetrievePropertiesEx", pc, &args).await;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Reads some properties of one object. Unset properties are absent from the map.
    pub async fn retrieve(&self, obj: &MoRef, paths: &[&str]) -> Result<HashMap<String, Node>> {
        let spec = property_spec(&obj.kind, paths, std::slice::from_ref(obj));
        let objects = self.retrieve_properties(&spec, None).await?;
        Ok(objects
            .into_iter()
            .find(|o| &o.obj == obj)
            .map(|o| o.props)
            .unwrap_or_default())
    }

    /// Polls a Task until it ends. Reports `info.progress` on the way. Returns
    /// `info.result` (e.g. a clone's new VM MoRef) when set; a task error becomes
    /// [`Error::Fault`] with the fault type and its fields.
    pub async fn wait_task(
        &self,
        task: &MoRef,
        progress: &mut (dyn FnMut(u8) + Send),
    ) -> Result<Option<Node>> {
        self.wait_task_or_cancel(task, progress, None, &mut |_| {})
            .await
    }

    /// Asks vCenter to cancel a running Task (vim25 `CancelTask`). vCenter refuses with
    /// a fault when the task is not cancelable or already ended; a cancelled task then
    /// ends in error with the fault `RequestCanceled`.
    pub async fn cancel_task(&self, task: &MoRef) -> Result<()> {
        self.invoke("CancelTask", task, "").await.map(|_| ())
    }

    /// [`VimClient::wait_task`] for a task the job may cancel: once `cancel` is asked
    /// for, `CancelTask` is sent (once) and the wait goes on until vCenter ends the task
    /// (in error `RequestCanceled` when it honoured the request). When vCenter refuses,
    /// `refused` hears why and the task runs to its end.
    pub async fn wait_task_or_cancel(
        &self,
        task: &MoRef,
        progress: &mut (dyn FnMut(u8) + Send),
        cancel: Option<&opsbot_core::Cancel>,
        refused: &mut (dyn FnMut(&Error) + Send),
    ) -> Result<Option<Node>> {
        let mut cancel_sent = false;
        const PATHS: [&str; 4] = ["info.state", "info.progress", "info.error", "info.result"];
        let mut delay = Duration::from_millis(100);
        let mut last = None;
        let deadline = std::time::Instant::now() + self.inner.cfg.task_timeout;
        loop {
            let mut props = self.retrieve(task, &PATHS).await?;
            let state = props
                .get("info.state")
                .map(|n| n.text.clone())
                .ok_or_else(|| Error::Protocol(format!("task {} has no info.state", task.value)))?;
            match state.as_str() {
                "success" => {
                    progress(100);
                    return Ok(props.remove("info.result"));
                }
                "error" => {
                    let err = props.get("info.error");
                    return Err(Error::from_fault_node(
                        err.and_then(|e| e.child("fault")),
                        err.and_then(|e| e.text_at("localizedMessage")),
                    ));
                }
                _ => {
                    let pct = props
                        .get("info.progress")
                        .and_then(|n| n.text.trim().parse::<u8>().ok())
                        .map(|p| p.min(99));
                    if let Some(p) = pct {
                        if last != Some(p) {
                            last = Some(p);
                            progress(p);
                        }
                    }
                    if !cancel_sent && cancel.is_some_and(opsbot_core::Cancel::is_requested) {
                        cancel_sent = true;
                        if let Err(e) = self.cancel_task(task).await {
                            tracing::info!(task = %task.value, error = %e, "vCenter did not cancel the task");
                            refused(&e);
                        }
                        // Look again at once: a cancelled task ends quickly.
                        continue;
                    }
                    if std::time::Instant::now() >= deadline {
                        return Err(Error::TaskTimeout {
                            task: task.value.clone(),
                            seconds: self.inner.cfg.task_timeout.as_secs(),
                        });
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(2));
        }
    }

    /// Ends the session. The client can still be used: the next call logs in again.
    pub async fn logout(&self) -> Result<()> {
        let sm = self.inner.service.session_manager.clone();
        let result = self.invoke("Logout", &sm, "").await;
        *self.inner.cookie_slot() = None;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_fault("NotAuthenticated") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A PropertyFilterSpec for explicit objects of one type (no traversal).
pub fn property_spec(kind: &str, paths: &[&str], objects: &[MoRef]) -> String {
    let mut s = String::from("<specSet>");
    s.push_str(&prop_set(kind, paths));
    for o in objects {
        s.push_str("<objectSet>");
        s.push_str(&o.to_xml("obj"));
        s.push_str("<skip>false</skip></objectSet>");
    }
    s.push_str("</specSet>");
    s
}

/// A PropertyFilterSpec over a ContainerView: one propSet per (type, paths), then the
/// view with the `traverseEntities` traversal.
pub fn view_spec(view: &MoRef, props_by_type: &[(&str, &[&str])]) -> String {
    let mut s = String::from("<specSet>");
    for (kind, paths) in props_by_type {
        s.push_str(&prop_set(kind, paths));
    }
    s.push_str("<objectSet>");
    s.push_str(&view.to_xml("obj"));
    s.push_str(concat!(
        "<skip>true</skip>",
        r#"<selectSet xsi:type="TraversalSpec"><name>traverseEntities</name>"#,
        "<type>ContainerView</type><path>view</path><skip>false</skip></selectSet>",
        "</objectSet></specSet>"
    ));
    s
}

fn prop_set(kind: &str, paths: &[&str]) -> String {
    let mut s = format!("<propSet><type>{}</type>", escape(kind));
    for p in paths {
        s.push_str("<pathSet>");
        s.push_str(&escape(p));
        s.push_str("</pathSet>");
    }
    s.push_str("</propSet>");
    s
}

/// Moves the `objects` of a RetrievePropertiesEx answer into `out` (no copies: large
/// inventories are tens of MB); returns the continuation token, if any.
fn read_objects(response: Node, out: &mut Vec<ObjectContent>) -> Result<Option<String>> {
    let mut token = None;
    for rv in response
        .children
        .into_iter()
        .filter(|c| c.name == "returnval")
    {
        for oc in rv.children {
            match oc.name.as_str() {
                "token" if !oc.text.is_empty() => token = Some(oc.text),
                "objects" => {
                    let mut obj = None;
                    let mut props = HashMap::new();
                    for part in oc.children {
                        match part.name.as_str() {
                            "obj" => obj = part.moref(),
                            "propSet" => {
                                let mut name = None;
                                let mut val = None;
                                for f in part.children {
                                    match f.name.as_str() {
                                        "name" => name = Some(f.text),
                                        "val" => val = Some(f),
                                        _ => {}
                                    }
                                }
                                if let (Some(n), Some(v)) = (name, val) {
                                    props.insert(n, v);
                                }
                            }
                            _ => {}
                        }
                    }
                    let obj =
                        obj.ok_or_else(|| Error::Protocol("ObjectContent without obj".into()))?;
                    out.push(ObjectContent { obj, props });
                }
                _ => {}
            }
        }
    }
    Ok(token)
}

fn has_missing_not_authenticated(response: &Node) -> bool {
    response.children_named("returnval").any(|rv| {
        rv.children_named("objects").any(|oc| {
            oc.children_named("missingSet").any(|ms| {
                let fault = ms.child("fault");
                let inner = fault.and_then(|f| f.child("fault"));
                [fault, inner]
                    .into_iter()
                    .flatten()
                    .any(|f| f.xsi_type.as_deref() == Some("NotAuthenticated"))
            })
        })
    })
}

/// Drops user info from the URL so it never reaches logs or messages.
fn sanitize_url(raw: &str) -> Result<String> {
    let mut url = reqwest::Url::parse(raw)
        .map_err(|e| Error::Config(format!("invalid vCenter URL {raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "vCenter URL must be http(s)://host/sdk, got scheme {}",
            url.scheme()
        )));
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(url.to_string())
}

fn build_http(cfg: &ClientConfig, url: &str) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout.min(Duration::from_secs(15)))
        .pool_idle_timeout(Duration::from_secs(50))
        .danger_accept_invalid_certs(cfg.insecure_tls);
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Error::Config(format!(
                "cannot read CA file {} for vCenter {url}: {e}",
                path.display()
            ))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::Config(format!(
                "CA file {} for vCenter {url} is not PEM: {e}",
                path.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "CA file {} for vCenter {url} holds no certificate",
                path.display()
            )));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| Error::Config(format!("cannot build HTTP client for vCenter {url}: {e}")))
}

/// POSTs one SOAP body and parses the envelope's Body. HTTP 500 with a Fault is an answer,
/// not a transport error; it is mapped by [`into_response`].
async fn post(
    http: &reqwest::Client,
    url: &str,
    api_version: &str,
    body: &str,
    cookie: Option<&str>,
    timeout: Duration,
) -> Result<Answer> {
    let envelope = format!("{SOAP_HEAD}{body}{SOAP_TAIL}");
    let mut req = http
        .post(url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", format!("urn:vim25/{api_version}"))
        .body(envelope);
    if let Some(c) = cookie {
        req = req.header("Cookie", format!("{COOKIE_NAME}={c}"));
    }
    let what = soap_method(body);
    let resp = req
        .send()
        .await
        .map_err(|e| transport_error(url, &what, timeout, e))?;
    let status = resp.status();
    let set_cookie = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_session_cookie);
    let text = resp
        .text()
        .await
        .map_err(|e| transport_error(url, &what, timeout, e))?;
    let doc = match xml::parse(&text) {
        Ok(doc) => doc,
        Err(e) => {
            return Err(Error::Protocol(format!(
                "vCenter {url} answered {what} with HTTP {status} and no SOAP envelope ({e}): {}",
                snippet(&text)
            )))
        }
    };
    let body = doc
        .children
        .into_iter()
        .find(|c| c.name == "Body")
        .and_then(|b| b.children.into_iter().next())
        .ok_or_else(|| {
            Error::Protocol(format!(
                "vCenter {url} answered {what} with HTTP {status} and an empty SOAP body"
            ))
        })?;
    if !status.is_success() && body.name != "Fault" {
        return Err(Error::Protocol(format!(
            "vCenter {url} answered {what} with HTTP {status}: {}",
            snippet(&text)
        )));
    }
    Ok(Answer { body, set_cookie })
}

/// Turns the Body's element into the method's response or an [`Error::Fault`].
fn into_response(body: Node, method: &str) -> Result<Node> {
    if body.name == "Fault" {
        let detail_fault = body.child("detail").and_then(|d| d.children.first());
        return Err(Error::from_fault_node(
            detail_fault,
            body.text_at("faultstring"),
        ));
    }
    let expected = format!("{method}Response");
    if body.name != expected {
        return Err(Error::Protocol(format!(
            "expected {expected}, got {}",
            body.name
        )));
    }
    Ok(body)
}

fn parse_session_cookie(header: &str) -> Option<String> {
    let first = header.split(';').next()?.trim();
    let (name, value) = first.split_once('=')?;
    if name.trim() != COOKIE_NAME {
        return None;
    }
    let value = value.trim().trim_matches('"');
    (!value.is_empty()).then(|| value.to_string())
}

fn soap_method(body: &str) -> String {
    body.trim_start_matches('<')
        .split([' ', '>', '/'])
        .next()
        .unwrap_or("request")
        .to_string()
}

fn snippet(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    t.replace(['\n', '\r'], " ")
}

fn transport_error(url: &str, what: &str, timeout: Duration, e: reqwest::Error) -> Error {
    if let Some(tls) = tls_cause(&e) {
        return Error::Tls(format!(
            "TLS handshake with vCenter {url} failed: {tls}. Trust its certificate with \
             ca_file, or set insecure_tls = true for a lab vCenter with a self-signed certificate"
        ));
    }
    if e.is_timeout() {
        return Error::Timeout {
            url: url.to_string(),
            what: what.to_string(),
            seconds: timeout.as_secs().max(1),
        };
    }
    Error::Unreachable {
        url: url.to_string(),
        message: error_chain(&e),
    }
}

/// Finds a rustls error (certificate, handshake) in the source chain.
fn tls_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                    return Some(r.to_string());
                }
            }
        }
        cur = err.source();
    }
    let chain = error_chain(e);
    let lower = chain.to_ascii_lowercase();
    (lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake"))
        .then_some(chain)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if parts.last().is_none_or(|p| !p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moref_xml_is_escaped() {
        let m = MoRef::new("ContainerView", "session[a&b]<x>");
        assert_eq!(
            m.to_xml("_this"),
            r#"<_this type="ContainerView">session[a&amp;b]&lt;x&gt;</_this>"#
        );
    }

    #[test]
    fn session_cookie_quotes_are_stripped() {
        assert_eq!(
            parse_session_cookie(r#"vmware_soap_session="52a1"; Path=/; HttpOnly"#).as_deref(),
            Some("52a1")
        );
        assert_eq!(
            parse_session_cookie("vmware_soap_session=abc; HttpOnly").as_deref(),
            Some("abc")
        );
        assert_eq!(parse_session_cookie("other=1"), None);
    }

    #[test]
    fn url_user_info_is_dropped() {
        assert_eq!(
            sanitize_url("http://user:pass@127.0.0.1:8989/sdk").unwrap(),
            "http://127.0.0.1:8989/sdk"
        );
        assert!(sanitize_url("ftp://x/sdk").is_err());
    }

    #[test]
    fn debug_hides_password() {
        let cfg = ClientConfig::new("https://vc/sdk", "ops", "s3cret");
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn view_spec_is_in_schema_order() {
        let s = view_spec(
            &MoRef::new("ContainerView", "v"),
            &[
                ("Network", &["name"]),
                ("DistributedVirtualPortgroup", &["key"]),
            ],
        );
        let a = s.find("<propSet><type>Network").unwrap();
        let b = s.find("<propSet><type>Distributed").unwrap();
        let c = s.find("<objectSet>").unwrap();
        assert!(a < b && b < c);
    }
}
