//! Each collector against fixture trees (a physical server, a VMware VM, a bare ARM
//! board) and against this machine.

use super::*;
use crate::facts::ProblemKind;
use crate::source::FsSource;
use std::path::PathBuf;

fn fixture(name: &str) -> FsSource {
    FsSource::at(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
}

#[test]
fn server_fixture_yields_every_fact() {
    let r = collect(&fixture("server"), &[], None);
    assert_eq!(r.identity, "db-01");
    assert_eq!(r.hostname, "db-01");
    let os = r.os.as_ref().unwrap();
    assert_eq!(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
    assert_eq!((os.id.as_str(), os.version_id.as_str()), ("debian", "12"));
    assert_eq!(os.kernel, "6.1.0-18-amd64");
    assert_eq!(os.arch, "x86_64");
    let cpu = r.cpu.as_ref().unwrap();
    assert_eq!(cpu.model, "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz");
    assert_eq!((cpu.sockets, cpu.cores, cpu.threads), (2, 4, 8));
    let mem = r.memory.as_ref().unwrap();
    assert_eq!(mem.total_bytes, 263_846_864 * 1024);
    assert_eq!(mem.swap_bytes, 8_388_604 * 1024);
    // loop0 is not a disk, sdb has no media (size 0).
    let disks: Vec<&str> = r.disks.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(disks, ["nvme0n1", "sda"]);
    let sda = &r.disks[1];
    assert_eq!(sda.size_bytes, 937_703_088 * 512);
    assert_eq!(sda.model.as_deref(), Some("INTEL SSDSC2KB48"));
    assert_eq!(sda.serial.as_deref(), Some("BTYF0123456789"));
    assert_eq!(sda.rotational, Some(false));
    let mounts: Vec<&str> = r.filesystems.iter().map(|f| f.mount.as_str()).collect();
    assert_eq!(
        mounts,
        ["/", "/var/lib/mysql", "/boot/efi", "/mnt/backup disk"]
    );
    assert_eq!(r.filesystems[1].fstype, "xfs");
    // The fixture's own directory stands in for the mount: usage is read.
    assert!(r.filesystems[1].size_bytes.is_some());
    let nics: Vec<&str> = r.nics.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(nics, ["eth0", "eth1"], "lo is left out");
    let eth0 = &r.nics[0];
    assert_eq!(eth0.mac, "b8:ca:3a:6e:10:20");
    assert_eq!(eth0.ipv4, ["10.20.30.41/24", "10.20.30.42/24"]);
    assert_eq!(eth0.ipv6, ["fe80::baca:3aff:fe6e:1020/64"]);
    assert_eq!(eth0.speed_mbps, Some(10_000));
    assert_eq!(r.nics[1].speed_mbps, None, "-1 = unknown (link down)");
    assert_eq!(r.nics[1].state, "down");
    let b = r.board.as_ref().unwrap();
    assert_eq!(b.sys_vendor.as_deref(), Some("Dell Inc."));
    assert_eq!(b.product_serial.as_deref(), Some("8XYZ123"));
    assert_eq!(
        b.product_uuid.as_deref(),
        Some("4c4c4544-0058-5910-8033-b8c04f313233")
    );
    assert_eq!(r.uptime_secs, Some(1_049_000));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn vmware_fixture_keeps_uuid_and_serial_and_drops_placeholders() {
    let r = collect(&fixture("vmware-vm"), &[], None);
    assert_eq!(r.hostname, "web-01.dc0.local");
    assert_eq!(r.cpu.as_ref().unwrap().cores, 2);
    let b = r.board.unwrap();
    assert_eq!(b.product_name.as_deref(), Some("VMware Virtual Platform"));
    assert!(b.product_serial.unwrap().starts_with("VMware-42 1c"));
    assert_eq!(b.board_serial, None, "\"None\" is a firmware placeholder");
    assert_eq!(r.filesystems[0].fstype, "overlay");
    assert_eq!(r.disks[0].rotational, Some(true));
    assert_eq!(r.nics[0].ipv4, ["192.168.2.182/24"]);
}

#[test]
fn minimal_fixture_degrades_gracefully() {
    let r = collect(&fixture("minimal"), &[], None);
    assert_eq!(r.hostname, "edge-7", "from /etc/hostname");
    let cpu = r.cpu.unwrap();
    assert_eq!(cpu.model, "Raspberry Pi 4 Model B Rev 1.4");
    assert_eq!((cpu.sockets, cpu.cores, cpu.threads), (1, 2, 2));
    assert!(r.board.is_none() && r.disks.is_empty() && r.nics.is_empty());
    assert_eq!(r.os.unwrap().name, "");
    assert!(r.uptime_secs.is_none());
    assert!(r.problems.is_empty(), "absent files are not problems");
}

#[test]
fn disabled_collectors_are_skipped_and_identity_is_kept() {
    let disabled: Vec<String> = ["cpu", "board", "nics"].map(String::from).to_vec();
    let r = collect(&fixture("server"), &disabled, Some("DB-OLD"));
    assert_eq!(r.identity, "db-old");
    assert_eq!(r.hostname, "db-01");
    assert!(r.cpu.is_none() && r.board.is_none() && r.nics.is_empty());
    assert!(r.memory.is_some() && r.os.is_some());
}

#[test]
fn an_unreadable_file_is_a_problem_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/server");
    copy_tree(&src, dir.path());
    // A directory where a file should be: reading it fails (also as root).
    let serial = dir.path().join("sys/class/dmi/id/product_serial");
    std::fs::remove_file(&serial).unwrap();
    std::fs::create_dir(&serial).unwrap();
    let r = collect(&FsSource::at(dir.path()), &[], None);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(r.problems[0].kind, ProblemKind::Unreadable);
    assert_eq!(
        r.problems[0].path.as_deref(),
        Some("/sys/class/dmi/id/product_serial")
    );
    let b = r.board.unwrap();
    assert_eq!(b.product_serial, None);
    assert_eq!(
        b.sys_vendor.as_deref(),
        Some("Dell Inc."),
        "the rest is read"
    );
}

pub(crate) fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

#[test]
fn this_machine() {
    let r = collect(&FsSource::live(), &[], None);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(r.hostname, hostname.trim().to_lowercase());
    let os = r.os.as_ref().unwrap();
    assert!(!os.kernel.is_empty() && !os.name.is_empty(), "{os:?}");
    let cpu = r.cpu.as_ref().unwrap();
    let online = std::thread::available_parallelism().unwrap().get() as u32;
    assert!(cpu.threads >= online, "{cpu:?} vs {online} online");
    assert!(r.memory.as_ref().unwrap().total_bytes > 64 << 20);
    assert!(
        r.filesystems
            .iter()
            .any(|f| f.mount == "/" && f.size_bytes.is_some()),
        "{:?}",
        r.filesystems
    );
    assert!(r.uptime_secs.is_some());
    // Every interface but lo, with the addresses the kernel has.
    let mut expected: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .collect();
    expected.sort();
    let got: Vec<String> = r.nics.iter().map(|n| n.name.clone()).collect();
    assert_eq!(got, expected);
    // The addresses are checked against iproute2's view (the rest above ran already).
    let Some(ip) = opsbot_testkit::program("ip", opsbot_testkit::fix::IP) else {
        return;
    };
    let out = std::process::Command::new(ip)
        .args(["-o", "-4", "addr", "show"])
        .output()
        .expect("run ip");
    let text = String::from_utf8_lossy(&out.stdout);
    for a in crate::source::parse_ip_addr(&text)
        .iter()
        .filter(|a| a.name != "lo")
    {
        let nic = r.nics.iter().find(|n| n.name == a.name).unwrap();
        assert!(
            nic.ipv4.contains(&format!("{}/{}", a.ip, a.prefix)),
            "{a:?} missing from {nic:?}"
        );
    }
}
