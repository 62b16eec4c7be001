//! CPU, memory and the board (DMI).

use super::Reader;
use crate::facts::{Board, Cpu, Memory};
use std::collections::BTreeSet;

/// `/proc/cpuinfo`: one block per logical CPU. Sockets are distinct `physical id`s,
/// cores are `cpu cores` per socket (x86); without them every thread counts as a core.
pub(super) fn cpu(r: &mut Reader<'_>) -> Option<Cpu> {
    let text = r.text("cpu", "/proc/cpuinfo")?;
    let mut threads = 0u32;
    // x86 says `model name`; ARM boards `Model` (the board) or only `Hardware`.
    let (mut model, mut board_model, mut hardware) = (String::new(), String::new(), String::new());
    let mut sockets: BTreeSet<String> = BTreeSet::new();
    let mut cores_per_socket: Option<u32> = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => threads += 1,
            "model name" | "cpu model" if model.is_empty() => model = v.to_string(),
            "Model" => board_model = v.to_string(),
            "Hardware" => hardware = v.to_string(),
            "physical id" => {
                sockets.insert(v.to_string());
            }
            "cpu cores" => cores_per_socket = v.parse().ok(),
            _ => {}
        }
    }
    if threads == 0 {
        return None;
    }
    let model = [model, board_model, hardware]
        .into_iter()
        .find(|m| !m.is_empty())
        .unwrap_or_default();
    let socket_count = (sockets.len() as u32).max(1);
    Some(Cpu {
        model: model.split_whitespace().collect::<Vec<_>>().join(" "),
        sockets: socket_count,
        cores: cores_per_socket.map_or(threads, |c| c * socket_count),
        threads,
    })
}

/// `/proc/meminfo` (kB).
pub(super) fn memory(r: &mut Reader<'_>) -> Option<Memory> {
    let text = r.text("memory", "/proc/meminfo")?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some(Memory {
        total_bytes: field("MemTotal")?,
        swap_bytes: field("SwapTotal").unwrap_or(0),
        available_bytes: field("MemAvailable"),
    })
}

/// `/sys/class/dmi/id`; absent on machines without DMI (some VMs, ARM boards).
/// Serials and the UUID are readable by root only.
pub(super) fn board(r: &mut Reader<'_>) -> Option<Board> {
    let mut get = |f: &str| {
        r.text("board", &format!("/sys/class/dmi/id/{f}"))
            // Firmware placeholders are not facts.
            .filter(|v| {
                let l = v.to_lowercase();
                !matches!(
                    l.as_str(),
                    "to be filled by o.e.m." | "default string" | "not specified" | "none"
                )
            })
    };
    let b = Board {
        sys_vendor: get("sys_vendor"),
        product_name: get("product_name"),
        product_serial: get("product_serial"),
        product_uuid: get("product_uuid").map(|u| u.to_lowercase()),
        board_vendor: get("board_vendor"),
        board_name: get("board_name"),
        board_serial: get("board_serial"),
        bios_version: get("bios_version"),
    };
    (b != Board::default()).then_some(b)
}
