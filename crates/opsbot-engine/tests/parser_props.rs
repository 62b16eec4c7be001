//! Property tests of the command parser: it never panics, and every command survives
//! a round trip through its canonical text, whatever separators a phone keyboard uses.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_core::VmOperation;
use opsbot_engine::command::{parse, Command};
use proptest::prelude::*;

fn vm_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,15}",
        "[\\u{4e00}-\\u{9fa5}]{1,8}",
        "[a-z]{1,4}[\\u{4e00}-\\u{9fa5}]{1,4}[0-9]{0,2}"
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (1u32..50).prop_map(|page| Command::Help { page, topic: None }),
        vm_name().prop_map(|vm| Command::Vm(VmOperation::PowerOn { vm })),
        vm_name().prop_map(|vm| Command::Vm(VmOperation::PowerOff { vm })),
        vm_name().prop_map(|vm| Command::Vm(VmOperation::Reboot { vm })),
        (vm_name(), 1u32..=128)
            .prop_map(|(vm, count)| Command::Vm(VmOperation::SetCpu { vm, count })),
        (vm_name(), 1u32..=4096)
            .prop_map(|(vm, gb)| Command::Vm(VmOperation::SetMemory { vm, gb })),
        (vm_name(), 1u32..=65536, proptest::option::of(vm_name())).prop_map(
            |(vm, gb, datastore)| Command::Vm(VmOperation::AddDisk { vm, gb, datastore })
        ),
        (vm_name(), vm_name())
            .prop_map(|(vm, network)| Command::Vm(VmOperation::SetNetwork { vm, network })),
        (vm_name(), vm_name())
            .prop_map(|(vm, new_name)| Command::Vm(VmOperation::Rename { vm, new_name })),
        (
            1u32..1000,
            vm_name(),
            1u8..=223,
            any::<u8>(),
            any::<u8>(),
            1u8..=254,
            proptest::option::of((1u32..=128, proptest::option::of(1u32..=4096)))
        )
            .prop_filter("loopback is refused", |(_, _, a, ..)| *a != 127)
            .prop_map(|(template, name, a, b, c, d, sizing)| {
                let (cpu, memory_gb) = match sizing {
                    Some((c, m)) => (Some(c), m),
                    None => (None, None),
                };
                Command::Clone {
                    template,
                    name,
                    ip: std::net::Ipv4Addr::new(a, b, c, d),
                    cpu,
                    memory_gb,
                }
            }),
        vm_name().prop_map(|keyword| Command::Find { keyword, page: 1 }),
    ]
}

/// Rewrites ASCII separators to their full-width forms and pads with spaces, at random.
fn phone_keyboard(text: &str, flips: &[bool]) -> String {
    let mut out = String::new();
    for (i, ch) in text.chars().enumerate() {
        let flip = flips.get(i % flips.len().max(1)).copied().unwrap_or(false);
        match (ch, flip) {
            (':', true) => out.push('：'),
            (',', true) => out.push_str(" ， "),
            (c, true) if c.is_ascii_digit() => out.push(char::from_u32(c as u32 + 0xFEE0).unwrap()),
            (c, _) => out.push(c),
        }
    }
    format!("  {out}\u{3000}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics(text in "\\PC{0,60}") {
        let _ = parse(&text);
    }

    #[test]
    fn never_panics_on_command_shaped_noise(name in "(克隆|CPU|内存|加盘|静默|任务|ping|概况)", rest in "[:：,，0-9a-z\\u{4e00}-\\u{4e10} .]{0,30}") {
        let _ = parse(&format!("{name}{rest}"));
    }

    #[test]
    fn canonical_text_round_trips(cmd in command(), flips in proptest::collection::vec(any::<bool>(), 1..8)) {
        let text = cmd.to_string();
        prop_assert_eq!(parse(&text).unwrap(), cmd.clone());
        prop_assert_eq!(parse(&phone_keyboard(&text, &flips)).unwrap(), cmd);
    }
}
