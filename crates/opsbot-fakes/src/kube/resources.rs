//! The resource types the fake serves: their names as the API and discovery spell them.

/// One served resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Namespace,
    Node,
    Pod,
    Event,
    Deployment,
    ReplicaSet,
    StatefulSet,
    ControllerRevision,
}

pub(crate) const ALL: [Kind; 8] = [
    Kind::Namespace,
    Kind::Node,
    Kind::Pod,
    Kind::Event,
    Kind::Deployment,
    Kind::ReplicaSet,
    Kind::StatefulSet,
    Kind::ControllerRevision,
];

impl Kind {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Node => "Node",
            Kind::Pod => "Pod",
            Kind::Event => "Event",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::ControllerRevision => "ControllerRevision",
        }
    }

    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Node => "nodes",
            Kind::Pod => "pods",
            Kind::Event => "events",
            Kind::Deployment => "deployments",
            Kind::ReplicaSet => "replicasets",
            Kind::StatefulSet => "statefulsets",
            Kind::ControllerRevision => "controllerrevisions",
        }
    }

    pub(crate) fn singular(self) -> &'static str {
        match self {
            Kind::Namespace => "namespace",
            Kind::Node => "node",
            Kind::Pod => "pod",
            Kind::Event => "event",
            Kind::Deployment => "deployment",
            Kind::ReplicaSet => "replicaset",
            Kind::StatefulSet => "statefulset",
            Kind::ControllerRevision => "controllerrevision",
        }
    }

    pub(crate) fn short_names(self) -> &'static [&'static str] {
        match self {
            Kind::Namespace => &["ns"],
            Kind::Node => &["no"],
            Kind::Pod => &["po"],
            Kind::Event => &["ev"],
            Kind::Deployment => &["deploy"],
            Kind::ReplicaSet => &["rs"],
            Kind::StatefulSet => &["sts"],
            Kind::ControllerRevision => &[],
        }
    }

    /// The API group: "" for core.
    pub(crate) fn group(self) -> &'static str {
        match self {
            Kind::Namespace | Kind::Node | Kind::Pod | Kind::Event => "",
            _ => "apps",
        }
    }

    pub(crate) fn api_version(self) -> &'static str {
        if self.group().is_empty() {
            "v1"
        } else {
            "apps/v1"
        }
    }

    pub(crate) fn namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::Node)
    }

    /// What the fake lets clients do to it; the rest answer 405 as the real server does
    /// for verbs a resource does not support (here: verbs opsbot does not use).
    pub(crate) fn writable(self) -> bool {
        matches!(self, Kind::Deployment | Kind::StatefulSet)
    }

    /// `deployments.apps`, `pods`: how Status messages name the resource.
    pub(crate) fn group_resource(self) -> String {
        if self.group().is_empty() {
            self.plural().to_string()
        } else {
            format!("{}.{}", self.plural(), self.group())
        }
    }

    pub(crate) fn from_path(group: &str, plural: &str) -> Option<Kind> {
        ALL.into_iter()
            .find(|k| k.group() == group && k.plural() == plural)
    }

    /// The categories kubectl's `get all` expands.
    pub(crate) fn in_all(self) -> bool {
        matches!(
            self,
            Kind::Pod | Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet
        )
    }
}
