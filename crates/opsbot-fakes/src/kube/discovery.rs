//! `/version`, `/api`, `/apis` and the group-version resource lists (legacy discovery;
//! the aggregated-discovery Accept gets the same plain JSON, and clients fall back).

use serde_json::{json, Value};

use super::resources::{Kind, ALL};

pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.4",
        "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T16:00:00Z",
        "goVersion": "go1.23.8",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn api(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group(name: &str) -> Value {
    let gv = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [gv], "preferredVersion": gv})
}

pub(crate) fn apis() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group("apps")]})
}

fn verbs(kind: Kind) -> Value {
    if kind.writable() {
        json!(["create", "delete", "get", "list", "patch", "update", "watch"])
    } else {
        json!(["get", "list", "watch"])
    }
}

/// The APIResourceList of group "" (core/v1) or "apps" (apps/v1).
pub(crate) fn resources(group: &str) -> Value {
    let mut list = Vec::new();
    for kind in ALL.into_iter().filter(|k| k.group() == group) {
        let mut r = json!({
            "name": kind.plural(),
            "singularName": kind.singular(),
            "namespaced": kind.namespaced(),
            "kind": kind.kind(),
            "verbs": verbs(kind),
        });
        if !kind.short_names().is_empty() {
            r["shortNames"] = json!(kind.short_names());
        }
        if kind.in_all() {
            r["categories"] = json!(["all"]);
        }
        list.push(r);
        if kind.writable() {
            list.push(json!({
                "name": format!("{}/scale", kind.plural()), "singularName": "",
                "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
            list.push(json!({
                "name": format!("{}/status", kind.plural()), "singularName": "",
                "namespaced": true, "kind": kind.kind(), "verbs": ["get"],
            }));
        }
        if kind == Kind::Pod {
            list.push(json!({
                "name": "pods/log", "singularName": "", "namespaced": true,
                "kind": "Pod", "verbs": ["get"],
            }));
        }
    }
    let gv = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
}
