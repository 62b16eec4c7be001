//! Automatic remediation: when a firing alert is about to be announced, each matching
//! `auto` rule's command runs at once, as the configured service identity, through the
//! engine (its permission check, job and audit; channel `alerts`). A run is admitted
//! by the store under the rule's hourly limit and the command's cool-down, atomically
//! across instances; an alert that is flapping is left alone. The outcome goes on the
//! alert's card and into the run's record.
//!
//! A group whose announcement is retried (the store was down, another instance flushed
//! part of it, the process died before the flush) must not run its remediation again:
//! before admitting, the rule's runs since the alert's notice are looked up, and a run
//! for the same alert and command is that announcement's own, whose outcome is told
//! again instead. The cool-down (at least a minute) covers two instances racing.

use crate::config::Flap;
use crate::notify::human_duration;
use crate::remediation::Rule;
use chrono::{DateTime, FixedOffset, SubsecRound, Utc};
use opsbot_core::chat::Operator;
use opsbot_store::alerts::{AlertRecord, AlertStore};
use opsbot_store::{Admission, CardStore, RemediationRecord, RemediationRun};
use std::sync::Arc;
use std::time::Duration;

/// The channel automatic runs are made (and audited) on.
pub const CHANNEL: &str = "alerts";

/// What automatic remediation needs from the binary: the engine to run commands
/// through, and the store's admission of runs.
#[derive(Clone)]
pub struct Remedy {
    pub operator: Arc<dyn Operator>,
    pub runs: Arc<dyn CardStore>,
}

impl std::fmt::Debug for Remedy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remedy").finish_non_exhaustive()
    }
}

/// What became of one automatic remediation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The engine took the command; `job` when it runs as one.
    Started { job: Option<i64> },
    /// The rule already ran `runs` times in the last hour.
    RateLimited { runs: u64, max: u32 },
    /// The same command ran recently, last at `last`.
    CoolingDown { last: DateTime<Utc> },
    /// The alert resolved `resolutions` times within `window`.
    Flapping { resolutions: u64, window: Duration },
    /// The engine refused it (permission, validation), in its words.
    Refused(String),
    /// It could not be tried (no engine here, no service identity).
    Unavailable(String),
}

/// How a started run is recorded, and read back.
const STARTED: &str = "started";
const REFUSED: &str = "refused: ";

impl Outcome {
    pub fn started(&self) -> bool {
        matches!(self, Outcome::Started { .. })
    }

    /// The line the card (and the text) shows for `command`.
    pub fn line(&self, command: &str, tz: FixedOffset) -> String {
        let why = match self {
            Outcome::Started { job: Some(job) } => {
                return format!("🤖 已自动执行 {command} (#{job})")
            }
            Outcome::Started { job: None } => return format!("🤖 已自动执行 {command}"),
            Outcome::RateLimited { runs, max } => {
                format!("1 小时内已执行 {runs} 次(上限 {max})")
            }
            Outcome::CoolingDown { last } => format!(
                "冷却中,上次执行于 {}",
                last.with_timezone(&tz).format("%H:%M:%S")
            ),
            Outcome::Flapping {
                resolutions,
                window,
            } => format!(
                "告警在抖动({} 内恢复 {resolutions} 次),请人工处理",
                human_duration(chrono::Duration::from_std(*window).unwrap_or_default())
            ),
            Outcome::Refused(text) | Outcome::Unavailable(text) => {
                text.lines().next().unwrap_or_default().to_string()
            }
        };
        format!("🤖 自动处置未执行 {command}: {why}")
    }

    /// The run's record: its outcome text and job.
    fn record(&self) -> (String, Option<i64>) {
        match self {
            Outcome::Started { job } => (
                job.map_or_else(|| STARTED.to_string(), |j| format!("{STARTED} #{j}")),
                *job,
            ),
            Outcome::Refused(text) => (format!("{REFUSED}{text}"), None),
            other => (format!("{REFUSED}{other:?}"), None),
        }
    }

    /// The outcome a recorded run had (one that never recorded any was started).
    fn of(run: &RemediationRecord) -> Outcome {
        match (&run.outcome, run.job) {
            (_, Some(job)) => Outcome::Started { job: Some(job) },
            (Some(text), None) => match text.strip_prefix(REFUSED) {
                Some(why) => Outcome::Refused(why.to_string()),
                None => Outcome::Started { job: None },
            },
            (None, None) => Outcome::Started { job: None },
        }
    }
}

/// Runs the `auto` rules.
pub struct Auto {
    remedy: Option<Remedy>,
    alerts: Arc<dyn AlertStore>,
    user: Option<String>,
    flap: Flap,
}

impl std::fmt::Debug for Auto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auto")
            .field("user", &self.user)
            .field("flap", &self.flap)
            .finish_non_exhaustive()
    }
}

impl Auto {
    pub fn new(
        remedy: Option<Remedy>,
        alerts: Arc<dyn AlertStore>,
        user: Option<String>,
        flap: Flap,
    ) -> Auto {
        Auto {
            remedy,
            alerts,
            user,
            flap,
        }
    }

    /// Runs `command` of `rule` for `alert`, whose firing was recorded (noticed) at
    /// `noticed`, unless this announcement ran it already, the rule is at its limit,
    /// the command cooling down or the alert flapping. `Err`: the store is down (the
    /// group is tried again later).
    pub async fn run(
        &self,
        rule: &Rule,
        command: &str,
        alert: &AlertRecord,
        noticed: DateTime<Utc>,
    ) -> opsbot_store::Result<Outcome> {
        let (Some(remedy), Some(user)) = (&self.remedy, &self.user) else {
            return Ok(Outcome::Unavailable(
                "此实例没有接入命令引擎或未配置 alerts.remediation_user".into(),
            ));
        };
        // The store keeps run times to the millisecond.
        let since = noticed.trunc_subsecs(3);
        if let Some(earlier) = earlier(remedy, rule, command, alert.id, since).await? {
            tracing::info!(rule = %rule.name, alert = alert.id, %command, "automatic remediation already made for this announcement; telling its outcome again");
            return Ok(earlier);
        }
        if self.flap.threshold > 0 {
            let from =
                Utc::now() - chrono::Duration::from_std(self.flap.window).unwrap_or_default();
            let resolutions = self.alerts.alert_resolutions(alert.id, from).await?;
            if resolutions >= u64::from(self.flap.threshold) {
                tracing::info!(rule = %rule.name, alert = alert.id, resolutions, "automatic remediation refused: the alert is flapping");
                return Ok(Outcome::Flapping {
                    resolutions,
                    window: self.flap.window,
                });
            }
        }
        let run = RemediationRun {
            rule: rule.name.clone(),
            target: command.to_string(),
            alert: Some(alert.id),
            at: Utc::now(),
        };
        let id = match remedy
            .runs
            .remediation_admit(&run, rule.max_per_hour, rule.cooldown)
            .await?
        {
            Admission::Admitted(id) => id,
            Admission::OverLimit { runs_last_hour } => {
                tracing::info!(rule = %rule.name, alert = alert.id, runs_last_hour, "automatic remediation refused: hourly limit");
                return Ok(Outcome::RateLimited {
                    runs: runs_last_hour,
                    max: rule.max_per_hour,
                });
            }
            Admission::CoolingDown { last } => {
                // Another instance announcing the same group may have just run it.
                if let Some(earlier) = earlier(remedy, rule, command, alert.id, since).await? {
                    return Ok(earlier);
                }
                tracing::info!(rule = %rule.name, alert = alert.id, %command, %last, "automatic remediation refused: cooling down");
                return Ok(Outcome::CoolingDown { last });
            }
        };
        let outcome = match remedy.operator.start_as(user, CHANNEL, command).await {
            Ok(started) => Outcome::Started { job: started.job },
            Err(text) => Outcome::Refused(text),
        };
        tracing::info!(rule = %rule.name, alert = alert.id, %command, %user, ?outcome, "automatic remediation");
        let (text, job) = outcome.record();
        if let Err(e) = remedy.runs.remediation_done(id, &text, job).await {
            tracing::warn!(run = id, error = %e, "could not record a remediation run's outcome");
        }
        Ok(outcome)
    }
}

/// The outcome of a run of `rule` for `alert` with `command` made since `since`.
async fn earlier(
    remedy: &Remedy,
    rule: &Rule,
    command: &str,
    alert: i64,
    since: DateTime<Utc>,
) -> opsbot_store::Result<Option<Outcome>> {
    Ok(remedy
        .runs
        .remediation_runs(&rule.name, since)
        .await?
        .iter()
        .find(|r| r.alert == Some(alert) && r.target == command)
        .map(Outcome::of))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_as_one_line_and_round_trip_through_the_record() {
        let tz = FixedOffset::east_opt(8 * 3600).unwrap();
        let cmd = "扩容:payments/api,+2";
        assert_eq!(
            Outcome::Started { job: Some(42) }.line(cmd, tz),
            "🤖 已自动执行 扩容:payments/api,+2 (#42)"
        );
        assert_eq!(
            Outcome::RateLimited { runs: 3, max: 3 }.line(cmd, tz),
            "🤖 自动处置未执行 扩容:payments/api,+2: 1 小时内已执行 3 次(上限 3)"
        );
        let last = DateTime::parse_from_rfc3339("2026-12-01T02:20:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            Outcome::CoolingDown { last }.line(cmd, tz),
            "🤖 自动处置未执行 扩容:payments/api,+2: 冷却中,上次执行于 10:20:05"
        );
        assert_eq!(
            Outcome::Flapping {
                resolutions: 3,
                window: Duration::from_secs(3600)
            }
            .line(cmd, tz),
            "🤖 自动处置未执行 扩容:payments/api,+2: 告警在抖动(1 小时 0 分钟 内恢复 3 次),请人工处理"
        );
        assert_eq!(
            Outcome::Refused("⛔ 无权限\n详情".into()).line(cmd, tz),
            "🤖 自动处置未执行 扩容:payments/api,+2: ⛔ 无权限"
        );
        let record = |o: &Outcome| {
            let (outcome, job) = o.record();
            RemediationRecord {
                id: 1,
                rule: "r".into(),
                target: cmd.into(),
                alert: Some(1),
                at: last,
                outcome: Some(outcome),
                job,
            }
        };
        for o in [
            Outcome::Started { job: Some(7) },
            Outcome::Started { job: None },
            Outcome::Refused("⛔ 无权限".into()),
        ] {
            assert_eq!(Outcome::of(&record(&o)), o);
        }
    }
}
