//! The crate's one error type. Messages name the vCenter and say what to do; they never
//! carry the password.

use crate::xml::Node;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A vim25 fault: a SOAP fault or a task that ended in error.
    #[error("vCenter fault {kind}: {message}")]
    Fault {
        /// The fault type, e.g. `InvalidPowerState`, `ManagedObjectNotFound`.
        kind: String,
        /// Readable text: the server's message, or the fault's fields when it gave none.
        message: String,
    },
    /// The vCenter could not be reached (DNS, refused connection, reset, ...).
    #[error("vCenter {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    /// Credentials refused.
    #[error("vCenter {url} refused login for user {user}: {message}")]
    Login {
        url: String,
        user: String,
        message: String,
    },
    /// No answer in time.
    #[error("vCenter {url} did not answer within {seconds}s ({what})")]
    Timeout {
        url: String,
        what: String,
        seconds: u64,
    },
    /// A task still running when opsbot stopped waiting for it.
    #[error("vCenter task {task} was still running after {seconds}s; opsbot stopped waiting (the task goes on in vCenter: check its recent tasks)")]
    TaskTimeout { task: String, seconds: u64 },
    /// The answer was not what vim25 promises (bad XML, unexpected status, missing element).
    #[error("vCenter protocol error: {0}")]
    Protocol(String),
    /// TLS handshake or certificate failure; the message names the vCenter and the remedy.
    #[error("{0}")]
    Tls(String),
    /// The configuration cannot work (bad URL, unreadable CA file).
    #[error("vSphere configuration error: {0}")]
    Config(String),
    /// The job's claim no longer held (or could not be confirmed) when `method` was
    /// about to be called: it was not called.
    #[error("{method} not called: the job's claim no longer holds (taken over by another instance, or the store could not confirm it)")]
    FencedOut { method: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The fault type when this is a [`Error::Fault`].
    pub fn fault_kind(&self) -> Option<&str> {
        match self {
            Error::Fault { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// True for a fault of this type.
    pub fn is_fault(&self, kind: &str) -> bool {
        self.fault_kind() == Some(kind)
    }

    /// True when the vCenter itself is the problem (down, slow, TLS, login): a retry
    /// later may work, the request is not at fault.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. } | Error::Login { .. } | Error::Timeout { .. } | Error::Tls(_)
        )
    }

    /// Builds a fault from a fault element (`<detail>` child, or `info.error.fault`).
    /// `server_message` is the faultstring / localizedMessage; it is used unless empty or a
    /// Go type name as vcsim writes it (`*types.InvalidPowerState`).
    pub fn from_fault_node(fault: Option<&Node>, server_message: Option<&str>) -> Error {
        let kind = fault
            .and_then(|f| f.xsi_type.clone())
            .or_else(|| fault.map(|f| f.name.strip_suffix("Fault").unwrap_or(&f.name).to_string()))
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "UnknownFault".to_string());
        let server_message = server_message
            .map(str::trim)
            .filter(|m| !m.is_empty() && !m.starts_with("*types."));
        let fields = fault.map(describe_fields).unwrap_or_default();
        let message = match (server_message, fields.is_empty()) {
            (Some(m), true) => m.to_string(),
            (Some(m), false) => format!("{m} ({fields})"),
            (None, false) => fields,
            (None, true) => kind.clone(),
        };
        Error::Fault { kind, message }
    }
}

/// `name=value` for each field of a fault; MoRefs as `Type:value`, nested structures by
/// their leaf texts.
fn describe_fields(fault: &Node) -> String {
    let mut parts = Vec::new();
    for c in &fault.children {
        if matches!(c.name.as_str(), "faultCause" | "faultMessage") {
            continue;
        }
        let value = if let Some(m) = c.moref() {
            format!("{}:{}", m.kind, m.value)
        } else if c.children.is_empty() {
            c.text.trim().to_string()
        } else {
            c.children
                .iter()
                .filter(|g| !g.text.trim().is_empty())
                .map(|g| format!("{}={}", g.name, g.text.trim()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        if !value.is_empty() {
            parts.push(format!("{}={}", c.name, value));
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    #[test]
    fn fault_from_fields_when_message_is_a_go_type() {
        let n = parse(r#"<val xmlns:X="http://www.w3.org/2001/XMLSchema-instance"><fault X:type="InvalidPowerState"><requestedState>poweredOff</requestedState><existingState>poweredOff</existingState></fault><localizedMessage>*types.InvalidPowerState</localizedMessage></val>"#).unwrap();
        let e = Error::from_fault_node(n.child("fault"), n.text_at("localizedMessage"));
        match &e {
            Error::Fault { kind, message } => {
                assert_eq!(kind, "InvalidPowerState");
                assert_eq!(
                    message,
                    "requestedState=poweredOff, existingState=poweredOff"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_fault("InvalidPowerState"));
    }

    #[test]
    fn fault_kind_from_element_name_and_moref_fields() {
        let n = parse(r#"<detail><ManagedObjectNotFoundFault><obj type="VirtualMachine">vm-83</obj></ManagedObjectNotFoundFault></detail>"#).unwrap();
        let e = Error::from_fault_node(n.children.first(), Some(""));
        assert_eq!(e.fault_kind(), Some("ManagedObjectNotFound"));
        assert_eq!(
            e.to_string(),
            "vCenter fault ManagedObjectNotFound: obj=VirtualMachine:vm-83"
        );
    }

    #[test]
    fn login_message_is_actionable() {
        let e = Error::Login {
            url: "https://vc1/sdk".into(),
            user: "ops".into(),
            message: "InvalidLogin".into(),
        };
        assert_eq!(
            e.to_string(),
            "vCenter https://vc1/sdk refused login for user ops: InvalidLogin"
        );
    }
}
