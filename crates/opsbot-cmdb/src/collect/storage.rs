//! Block devices (`/sys/block`) and mounted filesystems (`/proc/mounts`) with usage.

use super::Reader;
use crate::facts::{Disk, Filesystem};

/// Pseudo devices that are not disks of the machine.
fn is_virtual_block(name: &str) -> bool {
    ["loop", "ram", "zram", "dm-", "nbd", "sr", "fd", "md"]
        .iter()
        .any(|p| name.starts_with(p))
}

pub(super) fn disks(r: &mut Reader<'_>) -> Vec<Disk> {
    let mut out = Vec::new();
    for name in r.list("disks", "/sys/block") {
        if is_virtual_block(&name) {
            continue;
        }
        let base = format!("/sys/block/{name}");
        let sectors: u64 = r
            .text("disks", &format!("{base}/size"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if sectors == 0 {
            continue;
        }
        // virtio disks keep their serial beside the device, SCSI/NVMe under device/.
        let serial = r
            .quiet(&format!("{base}/device/serial"))
            .or_else(|| r.quiet(&format!("{base}/serial")));
        out.push(Disk {
            size_bytes: sectors * 512,
            model: r.quiet(&format!("{base}/device/model")),
            serial,
            rotational: r
                .quiet(&format!("{base}/queue/rotational"))
                .map(|v| v == "1"),
            removable: r.quiet(&format!("{base}/removable")).as_deref() == Some("1"),
            name,
        });
    }
    out
}

/// Filesystems that hold data; pseudo filesystems (proc, cgroup, tmpfs…) are left out.
const REAL_FS: &[&str] = &[
    "ext2",
    "ext3",
    "ext4",
    "xfs",
    "btrfs",
    "zfs",
    "vfat",
    "exfat",
    "ntfs",
    "ntfs3",
    "f2fs",
    "jfs",
    "reiserfs",
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "ceph",
    "glusterfs",
    "fuse.glusterfs",
];

/// `/proc/mounts` escapes spaces and such as octal (`\040`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("x");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn filesystems(r: &mut Reader<'_>) -> Vec<Filesystem> {
    let Some(text) = r.text("filesystems", "/proc/mounts") else {
        return Vec::new();
    };
    let mut out: Vec<Filesystem> = Vec::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 3 {
            continue;
        }
        let (device, mount, fstype) = (unescape(w[0]), unescape(w[1]), w[2]);
        // A container's root is an overlay: still the filesystem its data lives on.
        let real = REAL_FS.contains(&fstype) || (fstype == "overlay" && mount == "/");
        if !real {
            continue;
        }
        let usage = r.src.usage(&mount);
        let fs = Filesystem {
            size_bytes: usage.map(|u| u.size),
            used_bytes: usage.map(|u| u.used),
            avail_bytes: usage.map(|u| u.avail),
            mount,
            device,
            fstype: fstype.to_string(),
        };
        // Mounted twice (bind mounts): the last mount is what is visible.
        match out.iter_mut().find(|f| f.mount == fs.mount) {
            Some(f) => *f = fs,
            None => out.push(fs),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn octal_escapes_unescape() {
        assert_eq!(super::unescape(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(super::unescape(r"/a\\b"), r"/a\\b");
        assert_eq!(super::unescape(r"/end\04"), r"/end\04");
    }
}
