//! Server-side printing: `meta.k8s.io/v1` Tables, which kubectl asks for to print its
//! default columns. The columns are the real server's (priority 0 ones, and the wide
//! ones kubectl shows with `-o wide`).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::resources::Kind;

/// True when an Accept header asks for Tables.
pub(crate) fn wanted(accept: &str) -> bool {
    accept.contains("as=Table")
}

fn col(name: &str, kind: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": kind, "format": format, "description": "", "priority": priority})
}

fn columns(kind: Kind) -> Vec<Value> {
    let s = |n: &str| col(n, "string", 0);
    let w = |n: &str| col(n, "string", 1);
    match kind {
        Kind::Namespace => vec![s("Name"), s("Status"), s("Age")],
        Kind::Node => vec![
            s("Name"),
            s("Status"),
            s("Roles"),
            s("Age"),
            s("Version"),
            w("Internal-IP"),
            w("OS-Image"),
            w("Kernel-Version"),
        ],
        Kind::Pod => vec![
            s("Name"),
            s("Ready"),
            s("Status"),
            col("Restarts", "string", 0),
            s("Age"),
            w("IP"),
            w("Node"),
            w("Nominated Node"),
            w("Readiness Gates"),
        ],
        Kind::Deployment => vec![
            s("Name"),
            s("Ready"),
            col("Up-to-date", "integer", 0),
            col("Available", "integer", 0),
            s("Age"),
            w("Containers"),
            w("Images"),
            w("Selector"),
        ],
        Kind::ReplicaSet => vec![
            s("Name"),
            col("Desired", "integer", 0),
            col("Current", "integer", 0),
            col("Ready", "integer", 0),
            s("Age"),
            w("Containers"),
            w("Images"),
            w("Selector"),
        ],
        Kind::StatefulSet => vec![
            s("Name"),
            s("Ready"),
            s("Age"),
            w("Containers"),
            w("Images"),
        ],
        Kind::Event => vec![
            s("Last Seen"),
            s("Type"),
            s("Reason"),
            s("Object"),
            s("Message"),
        ],
        Kind::ControllerRevision => vec![
            s("Name"),
            s("Controller"),
            col("Revision", "integer", 0),
            s("Age"),
        ],
    }
}

/// kubectl's short ages: 45s, 3m12s, 25m, 5h3m, 3d4h, 120d.
pub(crate) fn age(ts: &Value) -> String {
    let Some(t) = ts
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    else {
        return "<unknown>".into();
    };
    let secs = (Utc::now() - t.with_timezone(&Utc)).num_seconds().max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{m}m{}s", s % 60),
        s if s < 3 * 3600 => format!("{m}m"),
        s if s < 8 * 3600 => format!("{h}h{}m", m % 60),
        s if s < 48 * 3600 => format!("{h}h"),
        s if s < 8 * 86400 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn joined(o: &Value, field: &str) -> String {
    o["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c[field].as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn cells(kind: Kind, o: &Value) -> Vec<Value> {
    let name = json!(o["metadata"]["name"]);
    let created = age(&o["metadata"]["creationTimestamp"]);
    let selector = || super::selector::match_labels_string(&o["spec"]["selector"]["matchLabels"]);
    match kind {
        Kind::Namespace => vec![name, o["status"]["phase"].clone(), json!(created)],
        Kind::Node => {
            let ready = o["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
            let status = if ready.is_some_and(|c| c["status"] == "True") {
                "Ready"
            } else {
                "NotReady"
            };
            let mut status = status.to_string();
            if o["spec"]["unschedulable"] == true {
                status.push_str(",SchedulingDisabled");
            }
            vec![
                name,
                json!(status),
                json!("<none>"),
                json!(created),
                o["status"]["nodeInfo"]["kubeletVersion"].clone(),
                o["status"]["addresses"][0]["address"].clone(),
                o["status"]["nodeInfo"]["osImage"].clone(),
                o["status"]["nodeInfo"]["kernelVersion"].clone(),
            ]
        }
        Kind::Pod => {
            let cs = o["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = cs.iter().filter(|c| c["ready"] == true).count();
            let restarts: i64 = cs.iter().map(|c| n(&c["restartCount"])).sum();
            let status = if o["metadata"]["deletionTimestamp"].is_string() {
                json!("Terminating")
            } else {
                o["status"]["phase"].clone()
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                status,
                json!(restarts.to_string()),
                json!(created),
                o["status"]["podIP"].clone(),
                json!(o["spec"]["nodeName"].as_str().unwrap_or("<none>")),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        Kind::Deployment => vec![
            name,
            json!(format!(
                "{}/{}",
                n(&o["status"]["readyReplicas"]),
                n(&o["spec"]["replicas"])
            )),
            json!(n(&o["status"]["updatedReplicas"])),
            json!(n(&o["status"]["availableReplicas"])),
            json!(created),
            json!(joined(o, "name")),
            json!(joined(o, "image")),
            json!(selector()),
        ],
        Kind::ReplicaSet => vec![
            name,
            json!(n(&o["spec"]["replicas"])),
            json!(n(&o["status"]["replicas"])),
            json!(n(&o["status"]["readyReplicas"])),
            json!(created),
            json!(joined(o, "name")),
            json!(joined(o, "image")),
            json!(selector()),
        ],
        Kind::StatefulSet => vec![
            name,
            json!(format!(
                "{}/{}",
                n(&o["status"]["readyReplicas"]),
                n(&o["spec"]["replicas"])
            )),
            json!(created),
            json!(joined(o, "name")),
            json!(joined(o, "image")),
        ],
        Kind::Event => {
            let io = &o["involvedObject"];
            vec![
                json!(age(&o["lastTimestamp"])),
                o["type"].clone(),
                o["reason"].clone(),
                json!(format!(
                    "{}/{}",
                    io["kind"].as_str().unwrap_or("").to_lowercase(),
                    io["name"].as_str().unwrap_or("")
                )),
                o["message"].clone(),
            ]
        }
        Kind::ControllerRevision => {
            let owner = &o["metadata"]["ownerReferences"][0];
            vec![
                name,
                json!(format!(
                    "statefulset.apps/{}",
                    owner["name"].as_str().unwrap_or("")
                )),
                json!(n(&o["revision"])),
                json!(created),
            ]
        }
    }
}

fn row(kind: Kind, o: &Value) -> Value {
    let mut meta = o["metadata"].clone();
    if let Some(m) = meta.as_object_mut() {
        m.remove("managedFields");
    }
    json!({
        "cells": cells(kind, o),
        "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
    })
}

/// A Table of `items` with the list's metadata.
pub(crate) fn list(kind: Kind, items: &[Value], metadata: Value) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns(kind),
        "rows": items.iter().map(|o| row(kind, o)).collect::<Vec<_>>(),
    })
}

/// One object as a Table (a `get` of one name, or a watch event).
pub(crate) fn single(kind: Kind, object: &Value) -> Value {
    let rv = object["metadata"]["resourceVersion"].clone();
    list(
        kind,
        std::slice::from_ref(object),
        json!({"resourceVersion": rv}),
    )
}
