//! Collection through a team's Salt master (seed 004's third mode): salt-api runs the
//! same snapshot script as agentless SSH collection ([`crate::ssh::script`]) on every
//! targeted minion with `cmd.run_all`, and reads its grains in the same pass; the same
//! collectors then read the snapshot, so an asset looks the same whichever way it was
//! collected. Grains fill what the snapshot lacks and add the configured grains as
//! `plugin.salt.*` facts.
//!
//! The identity is the minion id (a renamed host keeps it, as an agent keeps its
//! identity file). A minion that does not answer within the timeout is listed as such
//! and left as it was (never reported as changed; the stale sweep flags it once
//! `stale_after` passes); a minion whose answer is malformed or partial is refused alone.

use crate::collect;
use crate::config::SaltConfig;
use crate::facts::{valid_hostname, Cpu, Memory, Os, Report};
use crate::ingest::{Ingestor, Origin, Receipt};
use crate::ssh::{parse_snapshot, script};
use opsbot_core::parse_duration;
use opsbot_salt::{MinionReturn, RunAll, SaltApi, SaltError, Target};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A `[cmdb.salt]` section made ready to run.
#[derive(Debug, Clone)]
pub struct SaltSettings {
    pub api: SaltApi,
    pub target: Target,
    pub timeout: Duration,
    pub disabled: Vec<String>,
    pub grains: Vec<String>,
}

impl SaltSettings {
    /// `None` when `[cmdb.salt]` has no `api` (Salt collection is off).
    pub fn from_config(c: &SaltConfig) -> Option<Result<SaltSettings, SaltError>> {
        let api = c.api.as_ref()?;
        Some(SaltApi::new(api).map(|api| SaltSettings {
            api,
            target: c.target(),
            timeout: parse_duration(&c.timeout).unwrap_or(Duration::from_secs(30)),
            disabled: c.disabled_collectors.clone(),
            grains: c.grains.clone(),
        }))
    }
}

/// What became of one minion.
#[derive(Debug, Clone, PartialEq)]
pub enum MinionOutcome<T> {
    /// Collected (and, from [`collect_and_store`], stored).
    Collected(T),
    /// Listed by the master but no answer within the timeout: left unchanged.
    NoAnswer,
    /// It answered, but not with what the collection needs; the reason.
    Refused(String),
}

/// One minion's result of a pass.
#[derive(Debug)]
pub struct MinionResult<T> {
    pub minion: String,
    pub outcome: MinionOutcome<T>,
}

/// Runs the snapshot script and `grains.items` on every targeted minion (the two calls at
/// once) and builds each minion's report. The error is the pass's: salt-api unreachable,
/// login refused, a body salt-api would not send.
pub async fn collect(s: &SaltSettings) -> Result<Vec<MinionResult<Report>>, SaltError> {
    let script = script();
    let (grains, runs) = tokio::join!(
        s.api.local(&s.target, "grains.items", &[], None, s.timeout),
        s.api.run_all(&s.target, &script, s.timeout),
    );
    let (mut grains, mut runs) = (grains?, runs?);
    let minions: std::collections::BTreeSet<String> =
        grains.keys().chain(runs.keys()).cloned().collect();
    let mut out = Vec::with_capacity(minions.len());
    for minion in minions {
        let g = grains.remove(&minion).unwrap_or(MinionReturn::NoAnswer);
        let r = runs
            .remove(&minion)
            .unwrap_or_else(|| Err("the minion did not answer".into()));
        let outcome = match (g, r) {
            (MinionReturn::NoAnswer, _) => MinionOutcome::NoAnswer,
            (_, Err(e)) if e.contains("did not answer") => MinionOutcome::NoAnswer,
            (_, Err(e)) => MinionOutcome::Refused(format!("cmd.run_all: {e}")),
            (MinionReturn::Ok(g), Ok(run)) => {
                let (id, disabled, keep) = (minion.clone(), s.disabled.clone(), s.grains.clone());
                // The collectors are synchronous; many minions parse off the runtime.
                match tokio::task::spawn_blocking(move || {
                    report_of(&id, &g, &run, &disabled, &keep)
                })
                .await
                {
                    Ok(Ok(report)) => MinionOutcome::Collected(report),
                    Ok(Err(why)) => MinionOutcome::Refused(why),
                    Err(e) => MinionOutcome::Refused(format!("collector task: {e}")),
                }
            }
        };
        out.push(MinionResult { minion, outcome });
    }
    Ok(out)
}

/// One pass, stored: every collected minion goes through `ingestor` (`source` names the
/// run in the change history: `salt:schedule`, `salt:cli`).
pub async fn collect_and_store(
    s: &SaltSettings,
    ingestor: &Ingestor,
    source: &str,
) -> Result<Vec<MinionResult<Receipt>>, SaltError> {
    let collected = collect(s).await?;
    let mut out = Vec::with_capacity(collected.len());
    for c in collected {
        let outcome = match c.outcome {
            MinionOutcome::Collected(report) => match ingestor
                .submit(
                    report,
                    Origin::Salt {
                        source: source.to_string(),
                    },
                )
                .await
            {
                Ok(receipt) => MinionOutcome::Collected(receipt),
                Err(e) => MinionOutcome::Refused(e.to_string()),
            },
            MinionOutcome::NoAnswer => MinionOutcome::NoAnswer,
            MinionOutcome::Refused(why) => MinionOutcome::Refused(why),
        };
        out.push(MinionResult {
            minion: c.minion,
            outcome,
        });
    }
    Ok(out)
}

/// A minion's report from its grains and the snapshot script's `cmd.run_all` result, or
/// why its answer cannot be one (malformed grains, a script that did not finish).
pub fn report_of(
    minion: &str,
    grains: &Value,
    run: &RunAll,
    disabled: &[String],
    keep_grains: &[String],
) -> Result<Report, String> {
    let started = Instant::now();
    let id = minion.to_lowercase();
    if !valid_hostname(&id) {
        return Err(format!("minion id {minion:?} is not a hostname"));
    }
    let g = Grains::check(minion, grains)?;
    let snap = parse_snapshot(&run.stdout).ok_or_else(|| {
        format!(
            "the collection script did not finish (exit {}, {} bytes of output{})",
            run.retcode,
            run.stdout.len(),
            match run.stderr.lines().last() {
                Some(l) => format!(": {l}"),
                None => String::new(),
            }
        )
    })?;
    let mut report = collect::collect(&snap, disabled, Some(&id));
    let on = |name: &str| !disabled.iter().any(|d| d == name);
    // What the files did not tell (a kernel without /proc/cpuinfo's model, a BSD minion)
    // salt's grains do, in the same units.
    if on("os") {
        let os = report.os.get_or_insert_with(Os::default);
        fill(&mut os.name, g.text("os"));
        fill(&mut os.id, g.text("os").map(|o| o.to_lowercase()));
        fill(&mut os.version_id, g.text("osrelease"));
        fill(&mut os.pretty_name, g.text("osfullname"));
        fill(&mut os.kernel, g.text("kernelrelease"));
        fill(&mut os.arch, g.text("cpuarch"));
    }
    if on("cpu") && report.cpu.is_none() {
        report.cpu = g.num_cpus.map(|n| Cpu {
            model: g.text("cpu_model").unwrap_or_default(),
            sockets: 0,
            cores: n,
            threads: n,
        });
    }
    if on("memory") && report.memory.is_none() {
        report.memory = g.mem_mib.map(|m| Memory {
            total_bytes: m * 1024 * 1024,
            swap_bytes: g.swap_mib.unwrap_or(0) * 1024 * 1024,
            available_bytes: None,
        });
    }
    let kept: serde_json::Map<String, Value> = keep_grains
        .iter()
        .filter_map(|k| grains.get(k).map(|v| (k.clone(), v.clone())))
        .filter(|(_, v)| !v.is_null())
        .collect();
    if !kept.is_empty() {
        report.plugins.insert("salt".into(), Value::Object(kept));
    }
    report.collection_ms = started.elapsed().as_millis() as u64;
    report
        .validate()
        .map_err(|e| format!("the report is not valid: {e}"))?;
    Ok(report)
}

fn fill(slot: &mut String, v: Option<String>) {
    if slot.is_empty() {
        if let Some(v) = v {
            *slot = v;
        }
    }
}

/// The grains a report reads, checked: a minion whose grains are not salt's shapes (an
/// extension module or `grains.setval` gone wrong) is refused, not half-stored.
struct Grains<'a> {
    all: &'a serde_json::Map<String, Value>,
    num_cpus: Option<u32>,
    mem_mib: Option<u64>,
    swap_mib: Option<u64>,
}

impl<'a> Grains<'a> {
    fn check(minion: &str, grains: &'a Value) -> Result<Grains<'a>, String> {
        let all = grains
            .as_object()
            .ok_or_else(|| format!("grains.items answered {}, not the grains", kind_of(grains)))?;
        match all.get("id").and_then(Value::as_str) {
            Some(id) if id == minion => {}
            Some(id) => return Err(format!("grain id is {id:?}, not the minion id {minion:?}")),
            None => return Err("the grains have no id".into()),
        }
        for k in [
            "os",
            "osrelease",
            "osfullname",
            "kernelrelease",
            "cpuarch",
            "cpu_model",
        ] {
            if let Some(v) = all.get(k) {
                if !v.is_string() {
                    return Err(format!("grain {k} is {v}, not text"));
                }
            }
        }
        let number = |k: &str| -> Result<Option<u64>, String> {
            match all.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("grain {k} is {v}, not a whole number")),
            }
        };
        let num_cpus = match number("num_cpus")? {
            Some(0) => return Err("grain num_cpus is 0".into()),
            Some(n) => Some(u32::try_from(n).map_err(|_| format!("grain num_cpus is {n}"))?),
            None => None,
        };
        Ok(Grains {
            all,
            num_cpus,
            mem_mib: number("mem_total")?,
            swap_mib: number("swap_total")?,
        })
    }

    fn text(&self, k: &str) -> Option<String> {
        self.all
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
