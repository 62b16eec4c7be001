//! Agent collection on this machine (every built-in collector, no plug-ins): median
//! and worst of 200 runs. `cargo bench -p opsbot-cmdb --bench collect`
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_cmdb::collect;
use opsbot_cmdb::source::FsSource;
use std::time::{Duration, Instant};

fn main() {
    let src = FsSource::live();
    let mut times: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            let r = collect::collect(&src, &[], None);
            std::hint::black_box(r);
            t.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "collect (this machine): median {:?}, p99 {:?}, max {:?}",
        times[100], times[198], times[199]
    );
}
