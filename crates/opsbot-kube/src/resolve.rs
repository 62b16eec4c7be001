//! Finding what a user named: `name`, `ns/name`, `cluster/ns/name` or
//! `provider/cluster/ns/name`, among the objects they may see, with the closest names
//! when nothing matches. What they may not see is never found nor suggested.

use crate::cluster::Cluster;
use crate::kube::Target;
use crate::pool::PodInfo;
use std::sync::Arc;

/// What a name resolved to.
#[derive(Debug)]
pub enum Found<T> {
    One(T),
    /// Several objects answer to it (`ns/name` in two clusters): their full paths.
    Many(Vec<String>),
    /// Nothing; the closest visible names (`ns/name`), best first.
    None {
        similar: Vec<String>,
    },
}

impl<T> Found<T> {
    pub fn is_one(&self) -> bool {
        matches!(self, Found::One(_))
    }
}

/// A name split into its optional qualifiers.
struct Name<'a> {
    provider: Option<&'a str>,
    cluster: Option<&'a str>,
    namespace: Option<&'a str>,
    name: &'a str,
}

fn split(text: &str) -> Option<Name<'_>> {
    let parts: Vec<&str> = text.trim().split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(match parts.as_slice() {
        [name] => Name {
            provider: None,
            cluster: None,
            namespace: None,
            name,
        },
        [ns, name] => Name {
            provider: None,
            cluster: None,
            namespace: Some(ns),
            name,
        },
        [c, ns, name] => Name {
            provider: None,
            cluster: Some(c),
            namespace: Some(ns),
            name,
        },
        [p, c, ns, name] => Name {
            provider: Some(p),
            cluster: Some(c),
            namespace: Some(ns),
            name,
        },
        _ => return None,
    })
}

impl Name<'_> {
    fn admits(&self, c: &Cluster, ns: &str) -> bool {
        self.provider.is_none_or(|p| p == c.provider)
            && self.cluster.is_none_or(|x| x == c.name)
            && self.namespace.is_none_or(|n| n == ns)
    }
}

/// How many names a "did you mean" offers.
const SUGGESTIONS: usize = 3;

/// The closest of `names` to `text`, best first.
pub fn closest(text: &str, names: impl IntoIterator<Item = String>) -> Vec<String> {
    let last = |s: &str| s.rsplit('/').next().unwrap_or_default().to_string();
    let typed = last(text);
    // Both the whole path and its last segment must be close: `payments/apj` is not
    // close to `payments/db` however long the namespace they share.
    let mut scored: Vec<(f64, String)> = names
        .into_iter()
        .map(|n| {
            let score = strsim::jaro_winkler(text, &n).min(strsim::jaro_winkler(&typed, &last(&n)));
            (score, n)
        })
        .filter(|(s, _)| *s >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(SUGGESTIONS)
        .map(|(_, n)| n)
        .collect()
}

/// The form of a visible object's name to compare with what was typed: as many
/// segments as the user wrote.
fn comparable(text: &str, c: &Cluster, ns: &str, name: &str) -> String {
    match text.matches('/').count() {
        0 => name.to_string(),
        1 => format!("{ns}/{name}"),
        2 => format!("{}/{ns}/{name}", c.name),
        _ => c.scope(ns, name),
    }
}

pub fn workload(
    clusters: &[Arc<Cluster>],
    text: &str,
    visible: &dyn Fn(&str) -> bool,
) -> Found<Target> {
    let Some(want) = split(text) else {
        return Found::None {
            similar: Vec::new(),
        };
    };
    let mut hits = Vec::new();
    let mut seen = Vec::new();
    for c in clusters {
        let index = c.read();
        for (ns, n) in &index.namespaces {
            for w in n.workloads.values() {
                if !visible(&c.scope(ns, &w.name)) {
                    continue;
                }
                if want.admits(c, ns) && w.name == want.name {
                    hits.push(Target {
                        cluster: c.clone(),
                        kind: w.kind,
                        namespace: ns.clone(),
                        name: w.name.clone(),
                    });
                } else if hits.is_empty() {
                    seen.push(comparable(text, c, ns, &w.name));
                }
            }
        }
    }
    match hits.len() {
        0 => Found::None {
            similar: closest(text, seen),
        },
        1 => Found::One(hits.remove(0)),
        _ => Found::Many(
            hits.iter()
                .map(|t| format!("{} ({:?})", t.scope(), t.kind))
                .collect(),
        ),
    }
}

/// A pod by name, else the newest pod of the workload so named.
pub fn pod(
    clusters: &[Arc<Cluster>],
    text: &str,
    visible: &dyn Fn(&str) -> bool,
) -> Found<(Arc<Cluster>, PodInfo)> {
    let Some(want) = split(text) else {
        return Found::None {
            similar: Vec::new(),
        };
    };
    let mut hits = Vec::new();
    let mut seen = Vec::new();
    for c in clusters {
        let index = c.read();
        for (ns, n) in &index.namespaces {
            if !want.admits(c, ns) {
                continue;
            }
            if let Some(p) = n.pods.get(want.name) {
                if visible(&c.scope(ns, &p.name)) {
                    hits.push((c.clone(), p.clone()));
                }
            }
        }
    }
    if hits.is_empty() {
        match workload(clusters, text, visible) {
            Found::One(t) => {
                let index = t.cluster.read();
                let newest = index
                    .workload(&t.namespace, &t.name, Some(t.kind))
                    .and_then(|w| {
                        index
                            .pods_of(w)
                            .max_by_key(|p| (p.created, p.name.clone()))
                            .cloned()
                    });
                drop(index);
                return match newest {
                    Some(p) => Found::One((t.cluster.clone(), p)),
                    None => Found::None {
                        similar: Vec::new(),
                    },
                };
            }
            Found::Many(m) => return Found::Many(m),
            Found::None { similar } => seen.extend(similar),
        }
        for c in clusters {
            let index = c.read();
            for (ns, n) in &index.namespaces {
                for p in n.pods.values() {
                    if visible(&c.scope(ns, &p.name)) {
                        seen.push(comparable(text, c, ns, &p.name));
                    }
                }
            }
        }
    }
    match hits.len() {
        0 => Found::None {
            similar: closest(text, seen),
        },
        1 => Found::One(hits.remove(0)),
        _ => Found::Many(
            hits.iter()
                .map(|(c, p)| c.scope(&p.namespace, &p.name))
                .collect(),
        ),
    }
}
