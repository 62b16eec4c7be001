//! Writes of workloads: validation, preconditions and the scale subresource.

use std::time::Instant;

use serde_json::{json, Value};

use super::controller;
use super::resources::Kind;
use super::selector::match_labels_string;
use super::status::ApiError;
use super::store::Store;

/// Checks a written workload as the API's validation does (what opsbot can get wrong).
pub(crate) fn validate(kind: Kind, name: &str, obj: &Value) -> Result<(), ApiError> {
    let qualified = format!("{}.apps", kind.kind());
    if name.is_empty() {
        return Err(ApiError::invalid(
            &qualified,
            "apps",
            kind.kind(),
            name,
            "metadata.name",
            "Required value: name or generateName is required",
        ));
    }
    if let Some(r) = obj["spec"]["replicas"].as_i64() {
        if r < 0 {
            return Err(ApiError::invalid(
                &qualified,
                "apps",
                kind.kind(),
                name,
                "spec.replicas",
                &format!("Invalid value: {r}: must be greater than or equal to 0"),
            ));
        }
    }
    Ok(())
}

/// Stores an update of a workload after the checks a real server makes: an injected
/// conflict, the resourceVersion precondition, the URL's name, validation. The status
/// is the server's; the controllers run before the answer.
pub(crate) fn commit(
    st: &mut Store,
    kind: Kind,
    ns: &str,
    name: &str,
    current: &Value,
    mut new: Value,
    precondition: Option<String>,
) -> Result<Value, ApiError> {
    if st.conflicts > 0 {
        st.conflicts -= 1;
        st.touch(kind, ns, name);
        return Err(ApiError::conflict(kind, name));
    }
    if let Some(rv) = precondition.filter(|rv| !rv.is_empty()) {
        if current["metadata"]["resourceVersion"].as_str() != Some(rv.as_str()) {
            return Err(ApiError::conflict(kind, name));
        }
    }
    let body_name = new["metadata"]["name"].as_str().unwrap_or("");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    validate(kind, name, &new)?;
    new["metadata"]["name"] = json!(name);
    new["metadata"]["namespace"] = json!(ns);
    new["status"] = current["status"].clone();
    st.update(kind, new);
    st.dirty.insert((kind, ns.to_string(), name.to_string()));
    controller::reconcile(st, Instant::now());
    Ok(st.get(kind, ns, name).cloned().unwrap_or_default())
}

/// The autoscaling/v1 Scale of a deployment or statefulset.
pub(crate) fn scale_of(obj: &Value) -> Value {
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": match_labels_string(&obj["spec"]["selector"]["matchLabels"]),
        },
    })
}
