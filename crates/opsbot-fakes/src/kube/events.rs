//! core/v1 Events the controllers record, as the real components word them.

use serde_json::json;

use super::resources::Kind;
use super::store::{now_rfc3339, Store};

/// The object an event is about.
pub(crate) struct Involved<'a> {
    pub kind: Kind,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

/// Records one Normal event from `component` about `about`.
pub(crate) fn record(
    store: &mut Store,
    about: Involved<'_>,
    component: &str,
    reason: &str,
    message: String,
) {
    if store.quiet {
        return;
    }
    store.name_counter += 1;
    let now = now_rfc3339();
    let name = format!(
        "{}.{:016x}",
        about.name,
        0x1800_0000_0000_0000u64 + store.name_counter
    );
    let event = json!({
        "metadata": {"name": name, "namespace": about.namespace},
        "involvedObject": {
            "kind": about.kind.kind(),
            "namespace": about.namespace,
            "name": about.name,
            "uid": about.uid,
            "apiVersion": about.kind.api_version(),
        },
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": "Normal",
        "eventTime": null,
        "reportingComponent": component,
        "reportingInstance": "",
    });
    store.create(Kind::Event, event);
}
