//! Whether a cluster's pool can be trusted: syncing (its first lists are under way),
//! live since its watches all listed, or stale since one of them failed, with why.

use crate::error::Error;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// A cluster's pool health.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    /// Listing for the first time: nothing to show yet.
    Syncing,
    Live {
        since: DateTime<Utc>,
    },
    /// The last data is kept and shown, marked stale.
    Stale {
        since: DateTime<Utc>,
        #[serde(serialize_with = "error_text")]
        error: Error,
    },
}

fn error_text<S: serde::Serializer>(e: &Error, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&e.to_string())
}

/// The watches of one cluster, each synced or failing; the cluster's health follows
/// from them.
#[derive(Debug, Default)]
pub struct StreamStates {
    /// Stream name → synced once, and its failure if it is failing now.
    streams: BTreeMap<String, (bool, Option<Error>)>,
    health: Option<Health>,
}

impl StreamStates {
    /// A stream that must list before the cluster is live. Streams start one after
    /// another, so one may have listed before the next is expected: a new stream
    /// takes a live cluster back to syncing.
    pub fn expect(&mut self, stream: &str) {
        if self
            .streams
            .insert(stream.to_string(), (false, None))
            .is_none()
            && matches!(self.health, Some(Health::Live { .. }))
        {
            self.health = None;
        }
    }

    /// The stream listed (or resumed after a failure).
    pub fn ok(&mut self, stream: &str) {
        self.streams.insert(stream.to_string(), (true, None));
        self.update();
    }

    pub fn failed(&mut self, stream: &str, error: Error) {
        let e = self
            .streams
            .entry(stream.to_string())
            .or_insert((false, None));
        e.1 = Some(error);
        self.update();
    }

    pub fn health(&self) -> Health {
        self.health.clone().unwrap_or(Health::Syncing)
    }

    fn update(&mut self) {
        let failing = self.streams.values().find_map(|(_, e)| e.clone());
        let all_synced = self.streams.values().all(|(s, e)| *s && e.is_none());
        let now = Utc::now();
        self.health = match (failing, self.health.take()) {
            (Some(error), Some(Health::Stale { since, .. })) => {
                Some(Health::Stale { since, error })
            }
            (Some(error), _) => Some(Health::Stale { since: now, error }),
            (None, Some(Health::Live { since })) if all_synced => Some(Health::Live { since }),
            (None, _) if all_synced => Some(Health::Live { since: now }),
            (None, Some(Health::Stale { since, error })) => Some(Health::Stale { since, error }),
            (None, other) => other,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_when_all_listed_stale_while_one_fails_and_back() {
        let mut s = StreamStates::default();
        s.expect("pods");
        s.ok("pods");
        assert!(matches!(s.health(), Health::Live { .. }));
        s.expect("nodes");
        assert_eq!(s.health(), Health::Syncing);
        s.ok("nodes");
        assert!(matches!(s.health(), Health::Live { .. }));
        s.failed("pods", Error::Unreachable("refused".into()));
        let Health::Stale { since, error } = s.health() else {
            panic!("not stale")
        };
        assert_eq!(error, Error::Unreachable("refused".into()));
        s.failed("nodes", Error::Unreachable("refused".into()));
        assert!(matches!(s.health(), Health::Stale { since: t, .. } if t == since));
        s.ok("pods");
        assert!(matches!(s.health(), Health::Stale { .. }));
        s.ok("nodes");
        assert!(matches!(s.health(), Health::Live { .. }));
    }
}
