//! The words of the deploy model as the store keeps them: an order's states (发布单),
//! its kinds, and a host's states within an order.

use std::fmt;

/// A release order's state. Stored as its Chinese text, which is also what users read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    /// Waiting for an approver.
    Pending,
    /// Approved (or needing no approval), waiting to start (its window, its turn).
    Ready,
    Running,
    Paused,
    Succeeded,
    /// Some hosts failed, the others run the new version.
    PartlyFailed,
    Failed,
    RolledBack,
    Rejected,
    Aborted,
    /// The instance running it stopped; the hosts' real state is in the order.
    Interrupted,
    /// Not approved in time.
    Expired,
}

impl OrderState {
    pub const ALL: [OrderState; 12] = [
        OrderState::Pending,
        OrderState::Ready,
        OrderState::Running,
        OrderState::Paused,
        OrderState::Succeeded,
        OrderState::PartlyFailed,
        OrderState::Failed,
        OrderState::RolledBack,
        OrderState::Rejected,
        OrderState::Aborted,
        OrderState::Interrupted,
        OrderState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Pending => "待审批",
            OrderState::Ready => "待发布",
            OrderState::Running => "发布中",
            OrderState::Paused => "暂停",
            OrderState::Succeeded => "成功",
            OrderState::PartlyFailed => "部分失败",
            OrderState::Failed => "失败",
            OrderState::RolledBack => "已回滚",
            OrderState::Rejected => "已驳回",
            OrderState::Aborted => "已终止",
            OrderState::Interrupted => "已中断",
            OrderState::Expired => "已过期",
        }
    }

    pub fn parse(s: &str) -> Option<OrderState> {
        OrderState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The order is over: nothing more happens to it.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            OrderState::Pending | OrderState::Ready | OrderState::Running | OrderState::Paused
        )
    }

    /// An order in these states holds its project: no other may be created (two open
    /// orders of one project would race for its hosts).
    pub const BUSY: [&'static str; 4] = ["待审批", "待发布", "发布中", "暂停"];
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an order does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKind {
    Release,
    Rollback,
    /// The failed hosts of an earlier order, again.
    Retry,
    ScaleOut,
    ScaleIn,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Release => "release",
            OrderKind::Rollback => "rollback",
            OrderKind::Retry => "retry",
            OrderKind::ScaleOut => "scale_out",
            OrderKind::ScaleIn => "scale_in",
        }
    }

    pub fn parse(s: &str) -> Option<OrderKind> {
        [
            OrderKind::Release,
            OrderKind::Rollback,
            OrderKind::Retry,
            OrderKind::ScaleOut,
            OrderKind::ScaleIn,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// What users read.
    pub fn label(self) -> &'static str {
        match self {
            OrderKind::Release => "发布",
            OrderKind::Rollback => "回滚",
            OrderKind::Retry => "重试",
            OrderKind::ScaleOut => "扩容",
            OrderKind::ScaleIn => "缩容",
        }
    }
}

/// A host's state within an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Not reached: the order stopped before its batch.
    Skipped,
    Interrupted,
    /// Switched back to the release it ran before (a canary undone after an alert).
    RolledBack,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Pending => "pending",
            HostState::Running => "running",
            HostState::Succeeded => "succeeded",
            HostState::Failed => "failed",
            HostState::Skipped => "skipped",
            HostState::Interrupted => "interrupted",
            HostState::RolledBack => "rolled_back",
        }
    }

    pub fn parse(s: &str) -> Option<HostState> {
        [
            HostState::Pending,
            HostState::Running,
            HostState::Succeeded,
            HostState::Failed,
            HostState::Skipped,
            HostState::Interrupted,
            HostState::RolledBack,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            HostState::Pending => "等待",
            HostState::Running => "进行中",
            HostState::Succeeded => "成功",
            HostState::Failed => "失败",
            HostState::Skipped => "未执行",
            HostState::Interrupted => "已中断",
            HostState::RolledBack => "已回滚",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_from_its_text() {
        for s in OrderState::ALL {
            assert_eq!(OrderState::parse(s.as_str()), Some(s));
        }
        assert!(OrderState::Pending.as_str() == "待审批" && !OrderState::Paused.is_final());
        assert!(OrderState::PartlyFailed.is_final());
    }
}
