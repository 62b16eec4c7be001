//! What the system `ping` printed, read into numbers. Pure: the providers and the engine
//! run `ping` themselves and share this reading, so every surface words it the same way.

/// What `ping -c N` said.
#[derive(Debug, Clone, PartialEq)]
pub struct PingStats {
    pub sent: u32,
    pub received: u32,
    pub avg_ms: Option<f64>,
}

/// Parses iputils / busybox `ping` output.
pub fn parse(output: &str) -> Option<PingStats> {
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
    Some(PingStats {
        sent: sent?,
        received: received?,
        avg_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_iputils_and_busybox_summaries() {
        let ok = "3 packets transmitted, 3 received, 0% packet loss, time 2041ms\nrtt min/avg/max/mdev = 0.031/0.045/0.060/0.011 ms\n";
        assert_eq!(
            parse(ok),
            Some(PingStats {
                sent: 3,
                received: 3,
                avg_ms: Some(0.045)
            })
        );
        let busybox = "3 packets transmitted, 2 packets received, 33% packet loss\nround-trip min/avg/max = 0.1/0.2/0.3 ms\n";
        assert_eq!(parse(busybox).map(|s| s.received), Some(2));
        assert_eq!(parse("ping: unknown host"), None);
    }
}
