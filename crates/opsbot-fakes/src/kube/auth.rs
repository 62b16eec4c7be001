//! Bearer tokens and what each may do: authentication (401) and a small RBAC (403).

use std::collections::HashMap;

use super::resources::Kind;
use super::status::ApiError;

/// What a token grants.
#[derive(Debug, Clone)]
pub(crate) enum Grant {
    /// Everything, like cluster-admin.
    Admin,
    /// Every verb on namespaced resources of these namespaces; cluster-scoped reads
    /// when `cluster_read`.
    Namespaces {
        namespaces: Vec<String>,
        cluster_read: bool,
    },
    /// Revoked or expired: 401.
    Revoked,
}

/// The user a restricted token authenticates as (opsbot's service account).
pub(crate) const SERVICE_ACCOUNT: &str = "system:serviceaccount:opsbot:opsbot";
const ADMIN_USER: &str = "kubernetes-admin";

#[derive(Debug, Default)]
pub(crate) struct Tokens {
    grants: HashMap<String, Grant>,
}

/// One request, as the authorizer sees it.
pub(crate) struct Attributes<'a> {
    pub verb: &'a str,
    pub kind: Kind,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

impl Tokens {
    pub(crate) fn set(&mut self, token: &str, grant: Grant) {
        self.grants.insert(token.to_string(), grant);
    }

    pub(crate) fn revoke(&mut self, token: &str) {
        self.grants.insert(token.to_string(), Grant::Revoked);
    }

    /// The grant for an `Authorization` header value, or 401.
    pub(crate) fn authenticate(&self, header: Option<&str>) -> Result<Grant, ApiError> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        match self.grants.get(token) {
            Some(Grant::Revoked) | None => Err(ApiError::unauthorized()),
            Some(g) => Ok(g.clone()),
        }
    }
}

impl Grant {
    pub(crate) fn user(&self) -> &'static str {
        match self {
            Grant::Admin => ADMIN_USER,
            _ => SERVICE_ACCOUNT,
        }
    }

    /// Ok when allowed, else the 403 a real RBAC authorizer answers.
    pub(crate) fn authorize(&self, a: &Attributes<'_>) -> Result<(), ApiError> {
        let allowed = match self {
            Grant::Admin => true,
            Grant::Revoked => false,
            Grant::Namespaces {
                namespaces,
                cluster_read,
            } => match a.namespace {
                Some(ns) if a.kind.namespaced() => namespaces.iter().any(|n| n == ns),
                // Namespaced resources across all namespaces need a ClusterRole.
                None if a.kind.namespaced() => false,
                _ => *cluster_read && matches!(a.verb, "get" | "list" | "watch"),
            },
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                self.user(),
                a.verb,
                a.kind,
                a.subresource,
                a.namespace.filter(|_| a.kind.namespaced()),
                a.name,
            ))
        }
    }
}
