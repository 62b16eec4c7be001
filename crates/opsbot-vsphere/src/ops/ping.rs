//! Ping: the guest IP's reachability from this host (system `ping`) plus the VMware Tools
//! heartbeat as vCenter sees it.

use super::{reject, Ctx};
use opsbot_core::ping::{parse as parse_ping, PingStats};
use opsbot_core::{
    Done, GuestTools, Heartbeat, OpOutcome, PingFailure, PingResult, Pinged, ProviderError,
    Rejection, Step, ToolsStatus,
};
use std::time::Duration;

const COUNT: u32 = 3;

/// Pings an address with the system `ping` (`-c 3 -W 1`).
pub(super) async fn system_ping(ip: &str) -> Result<PingStats, PingFailure> {
    let run = tokio::process::Command::new("ping")
        .args(["-n", "-c", &COUNT.to_string(), "-W", "1", ip])
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(15), run).await {
        Err(_) => return Err(PingFailure::TimedOut),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PingFailure::NoCommand)
        }
        Ok(Err(e)) => return Err(PingFailure::CannotRun(e.to_string())),
        Ok(Ok(out)) => out,
    };
    let text = String::from_utf8_lossy(&out.stdout);
    parse_ping(&text).ok_or_else(|| {
        let err = String::from_utf8_lossy(&out.stderr);
        PingFailure::Failed(err.trim().to_string())
    })
}

/// The guest tools from vCenter's running status and heartbeat colour.
pub(super) fn guest_tools(tools: Option<&str>, heartbeat: Option<&str>) -> GuestTools {
    let heartbeat = match heartbeat {
        Some("green") => Heartbeat::Green,
        Some("yellow") => Heartbeat::Yellow,
        Some("red") => Heartbeat::Red,
        _ => Heartbeat::Unknown,
    };
    let status = match tools {
        Some("guestToolsRunning") => ToolsStatus::Running,
        Some("guestToolsNotRunning") => ToolsStatus::NotRunning,
        Some("guestToolsExecutingScripts") => ToolsStatus::Starting,
        Some(other) => ToolsStatus::Other(other.to_string()),
        None => ToolsStatus::Unknown,
    };
    GuestTools {
        status: Some(status),
        heartbeat: Some(heartbeat),
    }
}

pub(super) async fn ping(ctx: &Ctx<'_>, id: &str) -> Result<OpOutcome, ProviderError> {
    let vm = ctx
        .facts(
            id,
            &[
                "guest.ipAddress",
                "guest.toolsRunningStatus",
                "guestHeartbeatStatus",
            ],
        )
        .await?;
    let tools = guest_tools(
        vm.text("guest.toolsRunningStatus"),
        vm.text("guestHeartbeatStatus"),
    );
    let name = vm.name.clone();
    if vm.template {
        return Err(reject(Rejection::TemplateCannotPing { vm: name }));
    }
    if !vm.powered_on() {
        return Err(reject(Rejection::Unreachable {
            vm: name,
            power: vm.power.clone(),
        }));
    }
    let Some(ip) = vm.text("guest.ipAddress").map(str::to_string) else {
        return Err(reject(Rejection::NoGuestIp { vm: name, tools }));
    };
    ctx.progress.report(30, &Step::Pinging { ip: ip.clone() });
    let result = match system_ping(&ip).await {
        Ok(r) => PingResult::Replies {
            sent: r.sent,
            received: r.received,
            avg_ms: r.avg_ms,
        },
        Err(why) => PingResult::Unchecked(why),
    };
    let done = Done::Pinged(Pinged {
        vm: name,
        ip,
        result,
        tools,
    });
    ctx.done(&vm.moref, done).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iputils_and_busybox() {
        let ok = "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.\n64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.031 ms\n\n--- 127.0.0.1 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time 2041ms\nrtt min/avg/max/mdev = 0.031/0.045/0.060/0.011 ms\n";
        assert_eq!(
            parse_ping(ok),
            Some(PingStats {
                sent: 3,
                received: 3,
                avg_ms: Some(0.045)
            })
        );
        let lost = "--- 10.9.9.9 ping statistics ---\n3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2050ms\n";
        assert_eq!(
            parse_ping(lost),
            Some(PingStats {
                sent: 3,
                received: 0,
                avg_ms: None
            })
        );
        let busybox = "3 packets transmitted, 2 packets received, 33% packet loss\nround-trip min/avg/max = 0.1/0.2/0.3 ms\n";
        assert_eq!(parse_ping(busybox).unwrap().received, 2);
        assert_eq!(parse_ping(busybox).unwrap().avg_ms, Some(0.2));
        assert_eq!(parse_ping("ping: unknown host"), None);
    }

    #[test]
    fn heartbeat_labels() {
        let label = |tools, heartbeat| {
            let refusal = Rejection::NoGuestIp {
                vm: "web".into(),
                tools: guest_tools(tools, heartbeat),
            };
            opsbot_engine::render::provider::rejection(&refusal)
        };
        assert!(label(Some("guestToolsRunning"), Some("green"))
            .contains("(VMware Tools 运行中,心跳正常)"));
        assert!(label(Some("guestToolsNotRunning"), Some("gray"))
            .contains("(VMware Tools 未运行,心跳未知)"));
    }

    #[tokio::test]
    async fn pings_loopback() {
        if opsbot_testkit::program("ping", opsbot_testkit::fix::PING).is_none() {
            return;
        }
        // Only ever 127.0.0.1 in tests. A ping that cannot send (no raw socket in this
        // sandbox) is missing too.
        match system_ping("127.0.0.1").await {
            Ok(r) => assert_eq!(r.sent, 3),
            Err(e) => {
                opsbot_testkit::skip::<()>(
                    format!("a working ping (127.0.0.1: {e:?})"),
                    opsbot_testkit::fix::PING,
                );
            }
        }
    }
}
