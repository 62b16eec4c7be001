//! Where collectors read from: the live machine (or a fixture tree standing in for
//! its `/`), or a snapshot of the same files fetched over SSH. Collectors only see
//! this trait, so agent, agentless and fixture collection are one code path.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Absent: the machine has no such thing (no DMI on this VM, no serial).
    Missing,
    /// Present but not readable by this user.
    Denied,
    Other(String),
}

/// Size and usage of a mounted filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub size: u64,
    pub used: u64,
    pub avail: u64,
}

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub name: String,
    pub ip: IpAddr,
    pub prefix: u8,
}

pub trait Source: Send + Sync {
    /// A file's text (`path` is absolute, as on the host).
    fn read(&self, path: &str) -> Result<String, ReadError>;
    /// Entry names of a directory, sorted.
    fn list(&self, dir: &str) -> Result<Vec<String>, ReadError>;
    /// Usage of the filesystem mounted at `mount`, if it can be had.
    fn usage(&self, mount: &str) -> Option<Usage>;
    /// Every interface address.
    fn addresses(&self) -> Result<Vec<IfAddr>, String>;
}

fn io_error(e: std::io::Error) -> ReadError {
    match e.kind() {
        ErrorKind::NotFound => ReadError::Missing,
        ErrorKind::PermissionDenied => ReadError::Denied,
        _ => ReadError::Other(e.to_string()),
    }
}

/// The files under a root directory: `/` for the machine itself, or a fixture tree.
#[derive(Debug, Clone)]
pub struct FsSource {
    root: PathBuf,
}

impl FsSource {
    /// The machine this process runs on.
    pub fn live() -> FsSource {
        FsSource { root: "/".into() }
    }

    /// A tree standing in for `/` (tests, a chroot). Its interface addresses are read
    /// from `<root>/ip-addr`, in the format of `ip -o addr show`.
    pub fn at(root: impl Into<PathBuf>) -> FsSource {
        FsSource { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }
}

impl Source for FsSource {
    fn read(&self, path: &str) -> Result<String, ReadError> {
        std::fs::read_to_string(self.path(path)).map_err(io_error)
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, ReadError> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(dir))
            .map_err(io_error)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    fn usage(&self, mount: &str) -> Option<Usage> {
        let st = nix::sys::statvfs::statvfs(&self.path(mount)).ok()?;
        let frag = st.fragment_size();
        let size = st.blocks().saturating_mul(frag);
        let free = st.blocks_free().saturating_mul(frag);
        Some(Usage {
            size,
            used: size.saturating_sub(free),
            avail: st.blocks_available().saturating_mul(frag),
        })
    }

    fn addresses(&self) -> Result<Vec<IfAddr>, String> {
        if !self.is_live() {
            return match self.read("/ip-addr") {
                Ok(text) => Ok(parse_ip_addr(&text)),
                Err(ReadError::Missing) => Ok(Vec::new()),
                Err(e) => Err(format!("ip-addr: {e:?}")),
            };
        }
        let mut out = Vec::new();
        for a in nix::ifaddrs::getifaddrs().map_err(|e| format!("getifaddrs: {e}"))? {
            let (Some(addr), Some(mask)) = (a.address, a.netmask) else {
                continue;
            };
            let (ip, prefix) = if let (Some(v4), Some(m)) =
                (addr.as_sockaddr_in(), mask.as_sockaddr_in())
            {
                (IpAddr::V4(v4.ip()), u32::from(m.ip()).count_ones() as u8)
            } else if let (Some(v6), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
                (IpAddr::V6(v6.ip()), u128::from(m.ip()).count_ones() as u8)
            } else {
                continue;
            };
            out.push(IfAddr {
                name: a.interface_name,
                ip,
                prefix,
            });
        }
        Ok(out)
    }
}

/// `ip -o addr show` → addresses (`eth0@if12` names lose their `@…` part).
pub fn parse_ip_addr(text: &str) -> Vec<IfAddr> {
    text.lines()
        .filter_map(|line| {
            let mut w = line.split_whitespace();
            let _index = w.next()?;
            let name = w.next()?.split('@').next()?.to_string();
            let family = w.next()?;
            if family != "inet" && family != "inet6" {
                return None;
            }
            let (ip, prefix) = w.next()?.split_once('/')?;
            Some(IfAddr {
                name,
                ip: ip.parse().ok()?,
                prefix: prefix.parse().ok()?,
            })
        })
        .collect()
}

/// Files, directory listings, `df` and `ip` output fetched from a remote host in one
/// go (see [`crate::ssh`]), answering as if they were local.
#[derive(Debug, Clone, Default)]
pub struct SnapshotSource {
    pub files: HashMap<String, Result<String, ReadError>>,
    pub dirs: HashMap<String, Vec<String>>,
    pub usage: HashMap<String, Usage>,
    pub addrs: Vec<IfAddr>,
}

impl Source for SnapshotSource {
    fn read(&self, path: &str) -> Result<String, ReadError> {
        self.files
            .get(path)
            .cloned()
            .unwrap_or(Err(ReadError::Missing))
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, ReadError> {
        self.dirs.get(dir).cloned().ok_or(ReadError::Missing)
    }

    fn usage(&self, mount: &str) -> Option<Usage> {
        self.usage.get(mount).copied()
    }

    fn addresses(&self) -> Result<Vec<IfAddr>, String> {
        Ok(self.addrs.clone())
    }
}

/// `df -P -B1` → usage by mount point.
pub fn parse_df(text: &str) -> HashMap<String, Usage> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.len() < 6 {
                return None;
            }
            Some((
                w[5..].join(" "),
                Usage {
                    size: w[1].parse().ok()?,
                    used: w[2].parse().ok()?,
                    avail: w[3].parse().ok()?,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addr_lines_parse() {
        let text = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                    4: eth0@if12    inet6 fd00::2/64 scope global \\       valid_lft forever\n\
                    5: br0    link/ether 00:11:22:33:44:55\n";
        let a = parse_ip_addr(text);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].name, "eth0");
        assert_eq!(a[1].ip, "fd00::2".parse::<IpAddr>().unwrap());
        assert_eq!(a[1].prefix, 64);
    }

    #[test]
    fn df_lines_parse() {
        let u = parse_df(
            "Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/vda 1000 400 600 40% /\n/dev/x 10 1 9 10% /mnt/my disk\n",
        );
        assert_eq!(u["/"].used, 400);
        assert_eq!(u["/mnt/my disk"].size, 10);
    }
}
