//! `Status` bodies: every error the fake answers, worded as a real API server words it.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::resources::Kind;

/// A failed request: the HTTP code and the `Status` object sent with it.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

fn details(kind: Kind, name: &str) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !kind.group().is_empty() {
        d.insert("group".into(), json!(kind.group()));
    }
    d.insert("kind".into(), json!(kind.plural()));
    Value::Object(d)
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub(crate) fn not_found(kind: Kind, name: &str) -> Self {
        ApiError {
            details: Some(details(kind, name)),
            ..ApiError::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", kind.group_resource()),
            )
        }
    }

    pub(crate) fn namespace_not_found(ns: &str) -> Self {
        ApiError::not_found(Kind::Namespace, ns)
    }

    pub(crate) fn conflict(kind: Kind, name: &str) -> Self {
        ApiError {
            details: Some(details(kind, name)),
            ..ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been \
                     modified; please apply your changes to the latest version and try again",
                    kind.group_resource()
                ),
            )
        }
    }

    pub(crate) fn already_exists(kind: Kind, name: &str) -> Self {
        ApiError {
            details: Some(details(kind, name)),
            ..ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", kind.group_resource()),
            )
        }
    }

    /// 403 as the RBAC authorizer words it.
    pub(crate) fn forbidden(
        user: &str,
        verb: &str,
        kind: Kind,
        subresource: Option<&str>,
        ns: Option<&str>,
        name: &str,
    ) -> Self {
        let object = if name.is_empty() {
            kind.group_resource()
        } else {
            format!("{} \"{name}\"", kind.group_resource())
        };
        let resource = match subresource {
            Some(sub) => format!("{}/{sub}", kind.plural()),
            None => kind.plural().to_string(),
        };
        let scope = match ns {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        ApiError {
            details: Some(details(kind, name)),
            ..ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{object} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" \
                     in API group \"{}\" {scope}",
                    kind.group()
                ),
            )
        }
    }

    /// 422 for one invalid field. `qualified` is `Deployment.apps` or `Scale.autoscaling`.
    pub(crate) fn invalid(
        qualified: &str,
        group: &str,
        kind: &str,
        name: &str,
        field: &str,
        detail: &str,
    ) -> Self {
        let cause = format!("{field}: {detail}");
        let mut d = Map::new();
        d.insert("name".into(), json!(name));
        if !group.is_empty() {
            d.insert("group".into(), json!(group));
        }
        d.insert("kind".into(), json!(kind));
        d.insert(
            "causes".into(),
            json!([{"reason": "FieldValueInvalid", "message": detail, "field": field}]),
        );
        ApiError {
            details: Some(Value::Object(d)),
            ..ApiError::new(
                422,
                "Invalid",
                format!("{qualified} \"{name}\" is invalid: {cause}"),
            )
        }
    }

    /// 410 for a resourceVersion or continue token older than the kept history.
    pub(crate) fn expired(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub(crate) fn method_not_allowed() -> Self {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"),
        )
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self.to_json())
    }
}

/// A JSON answer with the content type clients check (`application/json` exactly, which
/// also tells kubectl that aggregated discovery is not served).
pub(crate) fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response()
}
