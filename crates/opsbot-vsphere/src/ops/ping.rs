//! Ping: the guest IP's reachability from this host (system `ping`) plus the VMware Tools
//! heartbeat as vCenter sees it.

use super::{power_label, reject, Ctx};
use opsbot_core::{OpOutcome, ProviderError};
use std::time::Duration;

const COUNT: u32 = 3;

/// What `ping -c N` said.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PingResult {
    pub sent: u32,
    pub received: u32,
    pub avg_ms: Option<f64>,
}

/// Parses iputils / busybox `ping` output.
pub(super) fn parse_ping(output: &str) -> Option<PingResult> {
    let stats = output
        .lines()
        .find(|l| l.contains("transmitted") && l.contains("received"))?;
    let mut sent = None;
    let mut received = None;
    for part in stats.split(',') {
        let part = part.trim();
        let n = part.split_whitespace().next()?.parse::<u32>().ok();
        if part.contains("transmitted") {
            sent = n;
        } else if part.contains("received") {
            received = n;
        }
    }
    // `rtt min/avg/max/mdev = 0.031/0.045/0.060/0.011 ms` (busybox: `round-trip min/avg/max`).
    let avg_ms = output
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.trim().parse().ok());
    Some(PingResult {
        sent: sent?,
        received: received?,
        avg_ms,
    })
}

/// Pings an address with the system `ping` (`-c 3 -W 1`).
pub(super) async fn system_ping(ip: &str) -> Result<PingResult, String> {
    let run = tokio::process::Command::new("ping")
        .args(["-n", "-c", &COUNT.to_string(), "-W", "1", ip])
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(15), run).await {
        Err(_) => return Err("ping 超时".into()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("本机没有 ping 命令".into())
        }
        Ok(Err(e)) => return Err(format!("无法运行 ping: {e}")),
        Ok(Ok(out)) => out,
    };
    let text = String::from_utf8_lossy(&out.stdout);
    parse_ping(&text).ok_or_else(|| {
        let err = String::from_utf8_lossy(&out.stderr);
        format!("ping 失败: {}", err.trim())
    })
}

/// The Tools part of the message: running status and heartbeat colour.
pub(super) fn heartbeat_label(tools: Option<&str>, heartbeat: Option<&str>) -> String {
    let beat = match heartbeat {
        Some("green") => "心跳正常",
        Some("yellow") => "心跳断续",
        Some("red") => "无心跳",
        _ => "心跳未知",
    };
    match tools {
        Some("guestToolsRunning") => format!("VMware Tools 运行中,{beat}"),
        Some("guestToolsNotRunning") => format!("VMware Tools 未运行,{beat}"),
        Some("guestToolsExecutingScripts") => format!("VMware Tools 正在启动,{beat}"),
        Some(other) => format!("VMware Tools: {other},{beat}"),
        None => format!("VMware Tools 状态未知,{beat}"),
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
    let tools = heartbeat_label(
        vm.text("guest.toolsRunningStatus"),
        vm.text("guestHeartbeatStatus"),
    );
    if vm.template {
        return Err(reject(format!("{} 是模板,无法 ping", vm.name)));
    }
    if !vm.powered_on() {
        return Err(reject(format!(
            "{} 不可达:虚拟机处于{}状态",
            vm.name,
            power_label(&vm.power)
        )));
    }
    let Some(ip) = vm.text("guest.ipAddress").map(str::to_string) else {
        return Err(reject(format!(
            "{} 已开机,但客户机没有报告 IP({tools}),无法 ping",
            vm.name
        )));
    };
    ctx.progress.report(30, &format!("正在 ping {ip}"));
    let message = match system_ping(&ip).await {
        Ok(r) if r.received > 0 => {
            let avg = r
                .avg_ms
                .map(|a| {
                    if a < 1.0 {
                        format!(",平均 {a:.2} ms")
                    } else {
                        format!(",平均 {a:.1} ms")
                    }
                })
                .unwrap_or_default();
            format!(
                "{} ({ip}) 可达:{}/{} 回复{avg};{tools}",
                vm.name, r.received, r.sent
            )
        }
        Ok(r) => format!(
            "{} ({ip}) 不可达:{}/{} 回复;{tools}",
            vm.name, r.received, r.sent
        ),
        Err(why) => format!("{} ({ip}) 无法检测连通性:{why};{tools}", vm.name),
    };
    ctx.done(&vm.moref, message).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iputils_and_busybox() {
        let ok = "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.\n64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.031 ms\n\n--- 127.0.0.1 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time 2041ms\nrtt min/avg/max/mdev = 0.031/0.045/0.060/0.011 ms\n";
        assert_eq!(
            parse_ping(ok),
            Some(PingResult {
                sent: 3,
                received: 3,
                avg_ms: Some(0.045)
            })
        );
        let lost = "--- 10.9.9.9 ping statistics ---\n3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2050ms\n";
        assert_eq!(
            parse_ping(lost),
            Some(PingResult {
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
        assert_eq!(
            heartbeat_label(Some("guestToolsRunning"), Some("green")),
            "VMware Tools 运行中,心跳正常"
        );
        assert_eq!(
            heartbeat_label(Some("guestToolsNotRunning"), Some("gray")),
            "VMware Tools 未运行,心跳未知"
        );
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
                    format!("a working ping (127.0.0.1: {e})"),
                    opsbot_testkit::fix::PING,
                );
            }
        }
    }
}
