//! The fence of an order run: the project's lease as this run took it (its token) and
//! the order held by this instance. An instance frozen past its lease (SIGSTOP, a long
//! pause) may wake to find its order interrupted by another instance, resumed there, or
//! the project's lease taken for another order; the run checks the fence before each
//! batch, each host and each step of a host, and stops at the first failure without
//! touching another host. Once lost, a fence stays lost for the rest of the run.

use crate::deploys::Deploys;
use opsbot_store::Lease;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a check waits before asking a store that failed once again.
pub(crate) const STORE_RETRY: Duration = Duration::from_millis(500);

pub(crate) struct Fence {
    lease: Lease,
    order: i64,
    lost: AtomicBool,
}

impl Fence {
    pub(crate) fn new(lease: Lease, order: i64) -> Fence {
        Fence {
            lease,
            order,
            lost: AtomicBool::new(false),
        }
    }

    /// Lost for good (the renewal or an earlier check saw it), without asking the store.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    fn lose(&self, why: &str) {
        if !self.lost.swap(true, Ordering::AcqRel) {
            // The run says it stopped (at warn); this is why.
            tracing::debug!(
                order = self.order,
                lease = %self.lease.name,
                token = self.lease.token,
                why,
                "release order fenced out: stopping before any further host"
            );
        }
    }

    /// Whether this run may go on: the lease still held with its token and unexpired,
    /// and the order still this instance's. A store that cannot say (asked twice)
    /// counts as no: a host not started is recoverable (继续), one deployed by two
    /// instances is not.
    pub(crate) async fn holds(&self, d: &Deploys) -> bool {
        if self.is_lost() {
            return false;
        }
        let mut checked = d.leases.lease_check(&self.lease).await;
        if checked.is_err() {
            tokio::time::sleep(STORE_RETRY).await;
            checked = d.leases.lease_check(&self.lease).await;
        }
        match checked {
            Ok(true) => {}
            Ok(false) => {
                self.lose("the project's lease changed hands or ran out");
                return false;
            }
            Err(e) => {
                self.lose(&format!("cannot check the project's lease: {e}"));
                return false;
            }
        }
        self.order_held(d).await
    }

    /// Renews the lease (same token) while the fence holds; called every heartbeat.
    /// `false` once lost. A store error leaves the verdict to the next check.
    pub(crate) async fn renew(&self, d: &Deploys) -> bool {
        if self.is_lost() {
            return false;
        }
        // Checked before taking: a lease released by the instance that found this one
        // dead must not be taken again here (that would be a new holding).
        match d.leases.lease_check(&self.lease).await {
            Ok(true) => {}
            Ok(false) => {
                self.lose("the project's lease changed hands or ran out");
                return false;
            }
            Err(_) => return true,
        }
        let ttl = d.stale_after();
        match d
            .leases
            .lease_take(&self.lease.name, &self.lease.owner, ttl)
            .await
        {
            Ok(Some(l)) if l.token == self.lease.token => {}
            Ok(_) => {
                self.lose("the project's lease went to another holder");
                return false;
            }
            Err(_) => return true,
        }
        match d.store.order_get(self.order).await {
            Ok(Some(o)) if o.owner.as_deref() == Some(d.owner.as_str()) => true,
            Ok(_) => {
                self.lose("the order is no longer this instance's");
                false
            }
            Err(_) => true,
        }
    }

    async fn order_held(&self, d: &Deploys) -> bool {
        let mut read = d.store.order_get(self.order).await;
        if read.is_err() {
            tokio::time::sleep(STORE_RETRY).await;
            read = d.store.order_get(self.order).await;
        }
        match read {
            Ok(Some(o)) if o.owner.as_deref() == Some(d.owner.as_str()) => true,
            Ok(_) => {
                self.lose("the order is no longer this instance's");
                false
            }
            Err(e) => {
                self.lose(&format!("cannot read the order: {e}"));
                false
            }
        }
    }
}
