//! Request handling: paths, authentication and authorisation, then the verbs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::auth::{Attributes, Grant};
use super::controller;
use super::discovery;
use super::logs::{self, LogQuery};
use super::paging::{decode_continue, encode_continue};
use super::patch;
use super::path::{not_found, parse_path, Target};
use super::resources::Kind;
use super::selector::Selector;
use super::status::{json_response, ApiError};
use super::store::Store;
use super::table;
use super::watch::{self, WatchRequest};
use super::write::{commit, scale_of, validate};
use super::{Recorded, Shared};

const BODY_LIMIT: usize = 8 << 20;
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(413, "RequestEntityTooLarge", "request body too large")
                .into_response()
        }
    };
    let query = parts.uri.query().unwrap_or("").to_string();
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token_prefix = auth
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.chars().take(4).collect())
        .unwrap_or_default();
    shared
        .requests
        .lock()
        .expect("requests lock")
        .push(Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: query.clone(),
            token_prefix,
        });
    let grant = match shared
        .tokens
        .lock()
        .expect("tokens lock")
        .authenticate(auth)
    {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let params: HashMap<String, String> =
        axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default();
    let call = Call {
        shared: &shared,
        grant: &grant,
        method: &parts.method,
        headers: &parts.headers,
        params: &params,
        body,
    };
    match call.dispatch(parts.uri.path()) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

struct Call<'a> {
    shared: &'a Arc<Shared>,
    grant: &'a Grant,
    method: &'a Method,
    headers: &'a HeaderMap,
    params: &'a HashMap<String, String>,
    body: Bytes,
}

fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// An object as a response carries it: with its kind and apiVersion.
fn typed(kind: Kind, mut obj: Value) -> Value {
    if let Some(m) = obj.as_object_mut() {
        m.insert("kind".into(), json!(kind.kind()));
        m.insert("apiVersion".into(), json!(kind.api_version()));
    }
    obj
}

impl Call<'_> {
    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean parameter as Go's `strconv.ParseBool` reads it (python sends `True`).
    fn flag(&self, key: &str) -> bool {
        matches!(
            self.param(key),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        )
    }

    fn wants_table(&self) -> bool {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(table::wanted)
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.shared.store.lock().expect("store lock")
    }

    fn dispatch(&self, path: &str) -> Result<Response, ApiError> {
        let target = parse_path(path)?;
        match target {
            Target::Version => Ok(ok(&discovery::version())),
            Target::Api => Ok(ok(&discovery::api(&self.shared.address()))),
            Target::Apis => Ok(ok(&discovery::apis())),
            Target::Resources(group) => Ok(ok(&discovery::resources(group))),
            Target::Collection { kind, ns } => self.collection(kind, ns),
            Target::Object {
                kind,
                ns,
                name,
                sub,
            } => self.object(kind, ns, name, sub),
        }
    }

    fn authorize(
        &self,
        verb: &str,
        kind: Kind,
        sub: Option<&str>,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        self.grant.authorize(&Attributes {
            verb,
            kind,
            subresource: sub,
            namespace: ns,
            name,
        })
    }

    fn collection(&self, kind: Kind, ns: Option<String>) -> Result<Response, ApiError> {
        let watching = self.flag("watch");
        let verb = match *self.method {
            Method::GET if watching => "watch",
            Method::GET => "list",
            Method::POST => "create",
            _ => return Err(ApiError::method_not_allowed()),
        };
        self.authorize(verb, kind, None, ns.as_deref(), "")?;
        let selector = Selector::parse(self.param("labelSelector"), self.param("fieldSelector"))?;
        match verb {
            "watch" => {
                let resource_version = match self.param("resourceVersion") {
                    None | Some("0") => None,
                    Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!("invalid resource version: {rv}"))
                    })?),
                };
                let timeout = self
                    .param("timeoutSeconds")
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(Duration::from_secs);
                Ok(watch::start(
                    self.shared,
                    WatchRequest {
                        kind,
                        namespace: ns,
                        resource_version,
                        bookmarks: self.flag("allowWatchBookmarks"),
                        timeout,
                        selector,
                        table: self.wants_table(),
                    },
                ))
            }
            "list" => self.list(kind, ns.as_deref(), &selector),
            _ => self.create(kind, ns),
        }
    }

    fn list(
        &self,
        kind: Kind,
        ns: Option<&str>,
        selector: &Selector,
    ) -> Result<Response, ApiError> {
        let st = self.store();
        let limit = self
            .param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let (list_rv, after) = match self.param("continue") {
            Some(token) => decode_continue(token, st.oldest_watchable)?,
            None => (st.rv, None),
        };
        let mut items = Vec::new();
        let mut remaining = 0usize;
        for (key, obj) in st.list(kind, ns) {
            if after
                .as_ref()
                .is_some_and(|a| (&key.1, &key.2) <= (&a.0, &a.1))
            {
                continue;
            }
            if !selector.matches(obj) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                continue;
            }
            items.push(obj.clone());
        }
        let mut metadata = json!({"resourceVersion": list_rv.to_string()});
        if remaining > 0 {
            let last = items.last().map(|o| {
                (
                    o["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    o["metadata"]["name"].as_str().unwrap_or("").to_string(),
                )
            });
            if let Some(last) = last {
                metadata["continue"] = json!(encode_continue(list_rv, &last));
                metadata["remainingItemCount"] = json!(remaining);
            }
        }
        drop(st);
        if self.wants_table() {
            return Ok(ok(&table::list(kind, &items, metadata)));
        }
        Ok(ok(&json!({
            "kind": format!("{}List", kind.kind()),
            "apiVersion": kind.api_version(),
            "metadata": metadata,
            "items": items,
        })))
    }

    fn create(&self, kind: Kind, ns: Option<String>) -> Result<Response, ApiError> {
        if !kind.writable() {
            return Err(ApiError::method_not_allowed());
        }
        let ns = ns.ok_or_else(not_found)?;
        let mut obj: Value = serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))?;
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        validate(kind, &name, &obj)?;
        let mut st = self.store();
        if st.get(Kind::Namespace, "", &ns).is_none() {
            return Err(ApiError::namespace_not_found(&ns));
        }
        if st.get(kind, &ns, &name).is_some() {
            return Err(ApiError::already_exists(kind, &name));
        }
        obj["metadata"]["namespace"] = json!(ns);
        obj["status"] = json!({});
        let stored = st.create(kind, obj);
        st.dirty.insert((kind, ns.clone(), name.clone()));
        controller::reconcile(&mut st, Instant::now());
        let stored = st.get(kind, &ns, &name).cloned().unwrap_or(stored);
        drop(st);
        self.shared.wake.notify_one();
        Ok(json_response(StatusCode::CREATED, &typed(kind, stored)))
    }

    fn object(
        &self,
        kind: Kind,
        ns: Option<String>,
        name: String,
        sub: Option<String>,
    ) -> Result<Response, ApiError> {
        let sub = sub.as_deref();
        let verb = match (self.method.clone(), sub) {
            (Method::GET, _) => "get",
            (Method::PUT, None | Some("scale")) => "update",
            (Method::PATCH, None | Some("scale")) => "patch",
            (Method::DELETE, None) => "delete",
            _ => return Err(ApiError::method_not_allowed()),
        };
        match sub {
            None | Some("status") => {}
            Some("scale") if kind.writable() => {}
            Some("log") if kind == Kind::Pod => {}
            _ => return Err(not_found()),
        }
        self.authorize(verb, kind, sub, ns.as_deref(), &name)?;
        let ns_str = ns.as_deref().unwrap_or("");
        match (verb, sub) {
            ("get", Some("scale")) => {
                let st = self.store();
                let obj = st
                    .get(kind, ns_str, &name)
                    .ok_or_else(|| ApiError::not_found(kind, &name))?;
                Ok(ok(&scale_of(obj)))
            }
            ("get", Some("log")) => self.log(ns_str, &name),
            ("get", _) => {
                let obj = self
                    .store()
                    .get(kind, ns_str, &name)
                    .cloned()
                    .ok_or_else(|| ApiError::not_found(kind, &name))?;
                if self.wants_table() {
                    return Ok(ok(&table::single(kind, &obj)));
                }
                Ok(ok(&typed(kind, obj)))
            }
            ("delete", _) => {
                if !kind.writable() {
                    return Err(ApiError::method_not_allowed());
                }
                let mut st = self.store();
                let obj = st
                    .delete(kind, ns_str, &name)
                    .ok_or_else(|| ApiError::not_found(kind, &name))?;
                let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
                controller::collect_garbage(&mut st, ns_str, &uid);
                Ok(ok(&typed(kind, obj)))
            }
            (_, Some("scale")) => self.write_scale(kind, ns_str, &name),
            _ => self.write(kind, ns_str, &name),
        }
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// PUT or PATCH of a deployment or statefulset.
    fn write(&self, kind: Kind, ns: &str, name: &str) -> Result<Response, ApiError> {
        if !kind.writable() {
            return Err(ApiError::method_not_allowed());
        }
        let mut st = self.store();
        let current = st
            .get(kind, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(kind, name))?;
        let (new, precondition) = if *self.method == Method::PUT {
            let new: Value = serde_json::from_slice(&self.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))?;
            let rv = new["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string);
            (new, rv)
        } else {
            let mut new = typed(kind, current.clone());
            patch::apply(&mut new, self.content_type(), &self.body)?;
            let rv = new["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string);
            (new, rv)
        };
        let stored = commit(&mut st, kind, ns, name, &current, new, precondition)?;
        drop(st);
        self.shared.wake.notify_one();
        Ok(ok(&typed(kind, stored)))
    }

    /// PUT or PATCH of the scale subresource.
    fn write_scale(&self, kind: Kind, ns: &str, name: &str) -> Result<Response, ApiError> {
        let mut st = self.store();
        let current = st
            .get(kind, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(kind, name))?;
        let scale = if *self.method == Method::PUT {
            serde_json::from_slice::<Value>(&self.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))?
        } else {
            let mut scale = scale_of(&current);
            patch::apply(&mut scale, self.content_type(), &self.body)?;
            scale
        };
        let replicas = &scale["spec"]["replicas"];
        let replicas = match replicas {
            Value::Null => 0,
            v => v
                .as_i64()
                .ok_or_else(|| ApiError::bad_request("spec.replicas: not an integer"))?,
        };
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale.autoscaling",
                "autoscaling",
                "Scale",
                name,
                "spec.replicas",
                &format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            ));
        }
        let precondition = scale["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        let mut new = current.clone();
        new["spec"]["replicas"] = json!(replicas);
        let stored = commit(&mut st, kind, ns, name, &current, new, precondition)?;
        drop(st);
        self.shared.wake.notify_one();
        Ok(ok(&scale_of(&stored)))
    }

    fn log(&self, ns: &str, name: &str) -> Result<Response, ApiError> {
        let pod = self
            .store()
            .get(Kind::Pod, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(Kind::Pod, name))?;
        let num = |k: &str| -> Result<Option<usize>, ApiError> {
            self.param(k)
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|_| ApiError::bad_request(format!("invalid {k}: {v}")))
                })
                .transpose()
        };
        let q = LogQuery {
            container: self.param("container").map(str::to_string),
            tail_lines: num("tailLines")?,
            limit_bytes: num("limitBytes")?,
            timestamps: self.flag("timestamps"),
        };
        let text = logs::render(&pod, &q)?;
        Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response())
    }
}
