//! VM operations against vcsim. Every effect is read back with an independent reader
//! (Python over the shared `vsoap.py`, below), never with the crate's own inventory code.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use opsbot_core::{
    ClaimCheck, NoProgress, OpOutcome, PowerState, Progress, ProviderError, Step, VmOperation,
};
use opsbot_engine::render::provider as render;
use opsbot_vsphere::client::VimClient;
use opsbot_vsphere::guest::{GuestNetwork, GuestSettings};
use opsbot_vsphere::ops::execute;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const PROVIDER: &str = "vc1";

/// The independent reader: `READER URL COMMAND ARGS...` prints JSON.
const READER: &str = r#"
import json, os, sys
sys.path.insert(0, os.environ["VSOAP_DIR"])
from vsoap import Soap, mo, obj_props, objects, returnval, rpex, view_traversal_spec, fault_type, NS, XSI_TYPE

url, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
s = Soap(url)
_, _, _, t = s.post('<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>')
sc = {c.tag.split("}")[1]: c.text for c in returnval(t)[0]}
s.post('<Login xmlns="urn:vim25">%s<userName>u</userName><password>p</password></Login>' % mo("_this", "SessionManager", sc["sessionManager"]))
pc = sc["propertyCollector"]

def props(typ, ident, paths):
    _, _, _, t = s.post(obj_props(pc, typ, [ident], paths))
    return objects(t)[1][0]

def txt(e):
    return None if e is None else e.text

def local(e):
    return (e.get(XSI_TYPE) or "").split(":")[-1]

def all_of(typ, paths):
    _, _, _, t = s.post('<CreateContainerView xmlns="urn:vim25">%s%s<type>%s</type><recursive>true</recursive></CreateContainerView>'
                        % (mo("_this", "ViewManager", sc["viewManager"]), mo("container", "Folder", sc["rootFolder"]), typ))
    view = returnval(t)[0].text
    _, _, _, t = s.post(rpex(pc, view_traversal_spec(view, [(typ, paths)])))
    return objects(t)[1]

if cmd == "vms":
    print(json.dumps({txt(o["name"]): o["_obj"][1] for o in all_of("VirtualMachine", ["name"])}))
elif cmd == "vm":
    v = props("VirtualMachine", args[0], ["name", "config.hardware.numCPU", "config.hardware.memoryMB", "runtime.powerState",
              "guest.ipAddress", "guest.hostName", "summary.config.template", "config.hardware.device", "parent", "network"])
    disks, nics = [], []
    for d in v["config.hardware.device"]:
        if local(d) == "VirtualDisk":
            disks.append({"unit": int(d.findtext("v:unitNumber", "-1", NS)), "controller": int(d.findtext("v:controllerKey", "-1", NS)),
                          "kb": int(d.findtext("v:capacityInKB", "0", NS)), "file": d.findtext("v:backing/v:fileName", "", NS)})
        elif d.find("v:macAddress", NS) is not None:
            nics.append({"type": local(d), "key": int(d.findtext("v:key", "-1", NS)), "label": d.findtext("v:deviceInfo/v:label", "", NS),
                         "backing": local(d.find("v:backing", NS)),
                         "portgroupKey": d.findtext("v:backing/v:port/v:portgroupKey", None, NS),
                         "switchUuid": d.findtext("v:backing/v:port/v:switchUuid", None, NS),
                         "network": d.findtext("v:backing/v:network", None, NS),
                         "mac": d.findtext("v:macAddress", None, NS)})
    nets = [e.text for e in v["network"]] if v.get("network") is not None else []
    print(json.dumps({"name": txt(v["name"]), "cpu": int(txt(v["config.hardware.numCPU"])),
                      "memory_mb": int(txt(v["config.hardware.memoryMB"])), "power": txt(v["runtime.powerState"]),
                      "ip": txt(v.get("guest.ipAddress")), "hostname": txt(v.get("guest.hostName")),
                      "template": txt(v["summary.config.template"]) == "true", "parent": txt(v["parent"]),
                      "disks": disks, "nics": nics, "networks": nets}))
elif cmd == "dvpg":
    for o in all_of("DistributedVirtualPortgroup", ["name", "key", "config.distributedVirtualSwitch"]):
        if txt(o["name"]) == args[0]:
            dvs = o["config.distributedVirtualSwitch"]
            u = props(dvs.get("type"), dvs.text, ["uuid"])
            print(json.dumps({"id": o["_obj"][1], "key": txt(o["key"]), "uuid": txt(u["uuid"])}))
            break
    else:
        print("null")
elif cmd == "add-portgroup":
    # A standard port group on one host only, as another client would add it.
    host_name, pg_name, vlan = args
    for h in all_of("HostSystem", ["name", "configManager.networkSystem"]):
        if txt(h["name"]) == host_name:
            ns = h["configManager.networkSystem"].text
            st, _, _, t = s.post('<AddPortGroup xmlns="urn:vim25">%s<portgrp><name>%s</name><vlanId>%s</vlanId><vswitchName>vSwitch0</vswitchName><policy></policy></portgrp></AddPortGroup>'
                                 % (mo("_this", "HostNetworkSystem", ns), pg_name, vlan))
            print(json.dumps({"status": st}))
            break
    else:
        print("null")
elif cmd == "call":
    method, ident, extra = args[0], args[1], "".join(args[2:])
    st, _, _, t = s.post('<%s xmlns="urn:vim25">%s%s</%s>' % (method, mo("_this", "VirtualMachine", ident), extra, method))
    if st != 200:
        print(json.dumps({"fault": fault_type(t)}))
    else:
        rv = returnval(t)
        if rv and rv[0].get("type") == "Task":
            info = props("Task", rv[0].text, ["info.state", "info.error"])
            print(json.dumps({"state": txt(info["info.state"])}))
        else:
            print(json.dumps({"state": "success"}))
else:
    sys.exit("unknown command " + cmd)
"#;

struct Env {
    vc: common::Vcsim,
    client: VimClient,
    guest: GuestSettings,
}

impl Env {
    async fn start() -> Option<Env> {
        let vc = common::vcsim_and_reader(&[])?;
        let client = VimClient::connect(vc.config()).await.expect("connect");
        Some(Env {
            vc,
            client,
            guest: GuestSettings::default(),
        })
    }

    fn read(&self, args: &[&str]) -> Value {
        let out = Command::new("python3")
            .arg("-c")
            .arg(READER)
            .arg(&self.vc.full_url)
            .args(args)
            .env("VSOAP_DIR", common::vsoap_dir())
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "reader {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("reader JSON")
    }

    fn id(&self, name: &str) -> String {
        self.read(&["vms"])[name]
            .as_str()
            .unwrap_or_else(|| panic!("no VM {name}"))
            .to_string()
    }

    fn vm(&self, id: &str) -> Value {
        self.read(&["vm", id])
    }

    fn call(&self, method: &str, id: &str) -> Value {
        self.read(&["call", method, id])
    }

    /// `method` with arguments after `_this` (XML, in WSDL order).
    fn call_with(&self, method: &str, id: &str, args_xml: &str) -> Value {
        self.read(&["call", method, id, args_xml])
    }

    async fn run(&self, op: VmOperation) -> Result<OpOutcome, ProviderError> {
        execute(&self.client, PROVIDER, &self.guest, &op, &NoProgress).await
    }

    async fn ok(&self, op: VmOperation) -> OpOutcome {
        let out = self
            .run(op.clone())
            .await
            .unwrap_or_else(|e| panic!("{op:?}: {e}"));
        let vm = out.vm.as_ref().expect("the VM is read back");
        assert_eq!(vm.provider, PROVIDER);
        out
    }

    async fn rejected(&self, op: VmOperation) -> String {
        match self.run(op.clone()).await {
            Err(ProviderError::Rejected(r)) => render::rejection(&r),
            other => panic!("{op:?}: expected a refusal, got {other:?}"),
        }
    }
}

/// What a user reads of an outcome.
fn said(out: &OpOutcome) -> String {
    render::done(&out.done)
}

/// Records progress notes as a user reads them.
#[derive(Default)]
struct Notes(Mutex<Vec<(u8, String)>>);

impl Progress for Notes {
    fn report(&self, percent: u8, step: &Step) {
        self.0.lock().unwrap().push((percent, render::step(step)));
    }
}

const VM0: &str = "DC0_H0_VM0";
const VM1: &str = "DC0_H0_VM1";

#[tokio::test]
async fn power_off_and_on_with_refusals() {
    let Some(env) = Env::start().await else {
        return;
    };
    let id = env.id(VM0);
    assert_eq!(env.vm(&id)["power"], "poweredOn");

    let out = env.ok(VmOperation::PowerOff { vm: id.clone() }).await;
    assert_eq!(said(&out), format!("{VM0} 已关机(强制断电)"));
    assert_eq!(out.vm.unwrap().power, PowerState::PoweredOff);
    assert_eq!(env.vm(&id)["power"], "poweredOff");
    assert_eq!(
        env.rejected(VmOperation::PowerOff { vm: id.clone() }).await,
        format!("{VM0} 已经是关机状态")
    );

    let out = env.ok(VmOperation::PowerOn { vm: id.clone() }).await;
    assert_eq!(said(&out), format!("{VM0} 已开机"));
    assert_eq!(env.vm(&id)["power"], "poweredOn");
    assert_eq!(
        env.rejected(VmOperation::PowerOn { vm: id.clone() }).await,
        format!("{VM0} 已经是开机状态")
    );

    match env
        .run(VmOperation::PowerOn {
            vm: "vm-9999".into(),
        })
        .await
    {
        Err(ProviderError::NotFound { id, .. }) => assert_eq!(id, "vm-9999"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn shutdown_waits_for_power_off() {
    let Some(env) = Env::start().await else {
        return;
    };
    let id = env.id(VM0);
    let notes = Notes::default();
    let out = execute(
        &env.client,
        PROVIDER,
        &env.guest,
        &VmOperation::Shutdown { vm: id.clone() },
        &notes,
    )
    .await
    .unwrap();
    assert_eq!(said(&out), format!("{VM0} 的操作系统已关闭"));
    assert_eq!(env.vm(&id)["power"], "poweredOff");
    assert!(notes
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|(_, n)| n == "已通知客户机关闭操作系统"));
    assert_eq!(
        env.rejected(VmOperation::Shutdown { vm: id.clone() }).await,
        format!("{VM0} 没有开机")
    );
}

#[tokio::test]
async fn reboot_falls_back_to_reset() {
    let Some(env) = Env::start().await else {
        return;
    };
    let id = env.id(VM0);
    // vcsim's guests have no running Tools (and 0.24.2 lacks RebootGuest): a reset.
    let out = env.ok(VmOperation::Reboot { vm: id.clone() }).await;
    assert!(
        said(&out).starts_with(&format!("{VM0}: ")),
        "{}",
        said(&out)
    );
    assert!(said(&out).contains("已改为硬重置(reset)"), "{}", said(&out));
    assert_eq!(env.vm(&id)["power"], "poweredOn");

    assert_eq!(env.call("PowerOffVM_Task", &id)["state"], "success");
    assert_eq!(
        env.rejected(VmOperation::Reboot { vm: id.clone() }).await,
        format!("{VM0} 没有开机,无法重启")
    );
}

#[tokio::test]
async fn cpu_and_memory() {
    let Some(env) = Env::start().await else {
        return;
    };
    let id = env.id(VM0);
    let before = env.vm(&id);
    let old_cpu = before["cpu"].as_u64().unwrap();

    let out = env
        .ok(VmOperation::SetCpu {
            vm: id.clone(),
            count: 4,
        })
        .await;
    assert_eq!(said(&out), format!("{VM0} 的 CPU: {old_cpu} → 4"));
    assert_eq!(out.vm.unwrap().cpu, 4);
    assert_eq!(env.vm(&id)["cpu"], 4);

    let out = env
        .ok(VmOperation::SetMemory {
            vm: id.clone(),
            gb: 2,
        })
        .await;
    assert!(said(&out).ends_with("→ 2 GiB"), "{}", said(&out));
    assert_eq!(env.vm(&id)["memory_mb"], 2048);

    assert_eq!(
        env.rejected(VmOperation::SetCpu {
            vm: id.clone(),
            count: 4
        })
        .await,
        format!("{VM0} 已经是 4 个 CPU")
    );
    // Shrinking a running VM needs a power off first.
    let m = env
        .rejected(VmOperation::SetCpu {
            vm: id.clone(),
            count: 2,
        })
        .await;
    assert!(m.contains("需要先关机"), "{m}");
    assert_eq!(env.vm(&id)["cpu"], 4);
    env.call("PowerOffVM_Task", &id);
    env.ok(VmOperation::SetMemory {
        vm: id.clone(),
        gb: 1,
    })
    .await;
    assert_eq!(env.vm(&id)["memory_mb"], 1024);
}

#[tokio::test]
async fn add_disks() {
    let Some(env) = Env::start().await else {
        return;
    };
    let id = env.id(VM0);
    let before = env.vm(&id)["disks"].as_array().unwrap().clone();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["unit"], 0);
    let controller = before[0]["controller"].as_i64().unwrap();

    let out = env
        .ok(VmOperation::AddDisk {
            vm: id.clone(),
            gb: 1,
            datastore: None,
        })
        .await;
    assert_eq!(
        said(&out),
        format!("{VM0} 已添加硬盘 2: 1 GiB,位于 LocalDS_0(SCSI 0:1)")
    );
    let out = env
        .ok(VmOperation::AddDisk {
            vm: id.clone(),
            gb: 2,
            datastore: Some("LocalDS_0".into()),
        })
        .await;
    assert!(said(&out).contains("硬盘 3: 2 GiB"), "{}", said(&out));

    let disks = env.vm(&id)["disks"].as_array().unwrap().clone();
    assert_eq!(disks.len(), 3);
    let d1 = disks
        .iter()
        .find(|d| d["unit"] == 1)
        .expect("disk on unit 1");
    assert_eq!(d1["kb"], 1024 * 1024);
    assert_eq!(d1["controller"], controller);
    let d2 = disks
        .iter()
        .find(|d| d["unit"] == 2)
        .expect("disk on unit 2");
    assert_eq!(d2["kb"], 2 * 1024 * 1024);
    assert!(
        d2["file"].as_str().unwrap().starts_with("[LocalDS_0]"),
        "{d2}"
    );

    let m = env
        .rejected(VmOperation::AddDisk {
            vm: id.clone(),
            gb: 4_000_000,
            datastore: None,
        })
        .await;
    assert!(m.starts_with("存储 LocalDS_0 剩余 "), "{m}");
    assert!(m.ends_with("不足以添加 4000000 GiB 磁盘"), "{m}");
    let m = env
        .rejected(VmOperation::AddDisk {
            vm: id.clone(),
            gb: 1,
            datastore: Some("nope".into()),
        })
        .await;
    assert!(m.contains("没有存储 nope;可选: LocalDS_0"), "{m}");
    assert_eq!(env.vm(&id)["disks"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn nic_moves_between_standard_and_distributed_port_groups() {
    let Some(env) = Env::start().await else {
        return;
    };
    let id = env.id(VM0);
    let dvpg = env.read(&["dvpg", "DC0_DVPG0"]);
    let nic = env.vm(&id)["nics"][0].clone();
    assert_eq!(nic["portgroupKey"], dvpg["key"]);

    let out = env
        .ok(VmOperation::SetNetwork {
            vm: id.clone(),
            network: "VM Network".into(),
        })
        .await;
    assert_eq!(
        said(&out),
        format!("{VM0} 的网卡 1: DC0_DVPG0 → VM Network")
    );
    let now = env.vm(&id);
    assert_eq!(
        now["nics"][0]["backing"],
        "VirtualEthernetCardNetworkBackingInfo"
    );
    assert_eq!(
        now["nics"][0]["mac"], nic["mac"],
        "the rest of the NIC is kept"
    );
    assert_eq!(now["nics"][0]["label"], nic["label"]);

    let out = env
        .ok(VmOperation::SetNetwork {
            vm: id.clone(),
            network: "DC0_DVPG0".into(),
        })
        .await;
    assert_eq!(
        said(&out),
        format!("{VM0} 的网卡 1: VM Network → DC0_DVPG0")
    );
    let now = env.vm(&id);
    let n = &now["nics"][0];
    assert_eq!(
        n["backing"],
        "VirtualEthernetCardDistributedVirtualPortBackingInfo"
    );
    assert_eq!(n["portgroupKey"], dvpg["key"]);
    assert_eq!(n["switchUuid"], dvpg["uuid"]);
    assert_eq!(n["mac"], nic["mac"]);
    assert!(now["networks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == &dvpg["id"]));

    assert_eq!(
        env.rejected(VmOperation::SetNetwork {
            vm: id.clone(),
            network: "DC0_DVPG0".into(),
        })
        .await,
        format!("{VM0} 已经在 DC0_DVPG0")
    );
    let m = env
        .rejected(VmOperation::SetNetwork {
            vm: id.clone(),
            network: "VLAN 999".into(),
        })
        .await;
    assert!(m.starts_with("没有端口组或 VLAN \"VLAN 999\""), "{m}");

    // A port group another client added on a host this VM does not run on.
    assert_eq!(
        env.read(&["add-portgroup", "DC0_C0_H0", "PG-elsewhere", "300"])["status"],
        200
    );
    let m = env
        .rejected(VmOperation::SetNetwork {
            vm: id.clone(),
            network: "PG-elsewhere".into(),
        })
        .await;
    assert!(
        m.starts_with(&format!(
            "端口组 PG-elsewhere 在 {VM0} 所在主机 DC0_H0 上不可用"
        )),
        "{m}"
    );
    assert_eq!(
        env.vm(&id)["nics"][0]["portgroupKey"],
        dvpg["key"],
        "the NIC stays where it was"
    );
}

#[tokio::test]
async fn rename_and_duplicate_refusal() {
    let Some(env) = Env::start().await else {
        return;
    };
    let id = env.id(VM0);
    let out = env
        .ok(VmOperation::Rename {
            vm: id.clone(),
            new_name: "web-01".into(),
        })
        .await;
    assert_eq!(said(&out), format!("{VM0} 已改名为 web-01"));
    assert_eq!(out.vm.unwrap().name, "web-01");
    assert_eq!(env.vm(&id)["name"], "web-01");
    assert_eq!(
        env.rejected(VmOperation::Rename {
            vm: id.clone(),
            new_name: VM1.into(),
        })
        .await,
        format!("已存在名为 {VM1} 的虚拟机")
    );
    assert_eq!(env.vm(&id)["name"], "web-01");
}

#[tokio::test]
async fn delete_destroys_a_powered_off_vm_and_refuses_a_running_one() {
    let Some(env) = Env::start().await else {
        return;
    };
    let (on, off) = (env.id(VM0), env.id(VM1));
    assert_eq!(env.vm(&on)["power"], "poweredOn");
    assert_eq!(
        env.rejected(VmOperation::Delete { vm: on.clone() }).await,
        format!("{VM0} 未关机(当前开机),不能删除;请先关机: 关机:{VM0}")
    );
    assert_eq!(env.read(&["vms"])[VM0], on.as_str(), "still there");
    // vCenter itself refuses too (InvalidPowerState), which the provider maps the same
    // way should the VM start between its read and the task.
    assert_eq!(env.call("Destroy_Task", &on)["state"], "error");
    assert_eq!(env.read(&["vms"])[VM0], on.as_str());

    assert_eq!(env.call("PowerOffVM_Task", &off)["state"], "success");
    let notes = Notes::default();
    let out = execute(
        &env.client,
        PROVIDER,
        &env.guest,
        &VmOperation::Delete { vm: off.clone() },
        &notes,
    )
    .await
    .unwrap();
    assert_eq!(said(&out), format!("{VM1} 已删除(连同其磁盘,不可恢复)"));
    assert!(out.vm.is_none(), "nothing to read back");
    assert!(
        notes
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|(_, n)| n == "正在删除虚拟机文件和磁盘"),
        "progress is reported"
    );
    let vms = env.read(&["vms"]);
    assert!(vms.get(VM1).is_none(), "gone from the inventory: {vms}");
    assert_eq!(vms[VM0], on.as_str());
    // A second delete finds nothing.
    match env.run(VmOperation::Delete { vm: off.clone() }).await {
        Err(ProviderError::NotFound { id, .. }) => assert_eq!(id, off),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn clone_takes_the_subnet_of_its_ip_and_sysprep_for_windows() {
    let Some(mut env) = Env::start().await else {
        return;
    };
    env.guest = GuestSettings {
        networks: vec![GuestNetwork {
            cidr: "10.20.0.0/16".into(),
            gateway: Some("10.20.0.1".into()),
            dns: vec!["10.20.0.53".into()],
            domain: Some("corp.example.com".into()),
        }],
        windows: None,
    };
    let tpl = make_template(&env);
    let clone = |name: &str, ip: [u8; 4]| VmOperation::Clone {
        template: tpl.clone(),
        name: name.into(),
        ip: Ipv4Addr::from(ip),
        cpu: None,
        memory_gb: None,
    };
    let out = env.ok(clone("app01", [10, 20, 3, 4])).await;
    assert!(
        said(&out).contains("IP 10.20.3.4/16,网关 10.20.0.1"),
        "{}",
        said(&out)
    );
    assert_eq!(env.vm(&env.id("app01"))["ip"], "10.20.3.4");

    // An IP in no configured subnet is refused before anything is copied.
    let count = env.read(&["vms"]).as_object().unwrap().len();
    let m = env.rejected(clone("app02", [172, 16, 0, 9])).await;
    assert!(
        m.contains("172.16.0.9") && m.contains("10.20.0.0/16"),
        "{m}"
    );

    // A Windows template needs the Sysprep password; with it the clone gets a NetBIOS name.
    let win = env.id(VM0);
    assert_eq!(env.call("PowerOffVM_Task", &win)["state"], "success");
    assert_eq!(
        env.call_with(
            "ReconfigVM_Task",
            &win,
            "<spec><guestId>windows9Server64Guest</guestId></spec>"
        )["state"],
        "success"
    );
    assert_eq!(env.call("MarkAsTemplate", &win)["state"], "success");
    let win_clone = |name: &str| VmOperation::Clone {
        template: win.clone(),
        name: name.into(),
        ip: Ipv4Addr::new(10, 20, 5, 6),
        cpu: None,
        memory_gb: None,
    };
    let m = env.rejected(win_clone("win-app01")).await;
    assert!(m.contains("Windows") && m.contains("admin_password"), "{m}");
    assert_eq!(env.read(&["vms"]).as_object().unwrap().len(), count);

    env.guest.windows = Some(serde_json::from_str(r#"{"admin_password":"S3cret!"}"#).unwrap());
    env.ok(win_clone("win-app01")).await;
    let c = env.vm(&env.id("win-app01"));
    assert_eq!(c["ip"], "10.20.5.6");
    assert_eq!(c["power"], "poweredOn");
}

#[tokio::test]
async fn a_clone_failing_after_the_copy_is_kept_and_reported_with_the_vm() {
    let Some(env) = Env::start().await else {
        return;
    };
    // A template without a NIC: the customisation's one adapter setting cannot apply.
    let tpl = env.id(VM1);
    let nic = env.vm(&tpl)["nics"][0].clone();
    let remove = format!(
        r#"<spec><deviceChange><operation>remove</operation><device xsi:type="{}"><key>{}</key></device></deviceChange></spec>"#,
        nic["type"].as_str().unwrap(),
        nic["key"]
    );
    assert_eq!(
        env.call_with("ReconfigVM_Task", &tpl, &remove)["state"],
        "success"
    );
    assert!(env.vm(&tpl)["nics"].as_array().unwrap().is_empty());
    assert_eq!(env.call("PowerOffVM_Task", &tpl)["state"], "success");
    assert_eq!(env.call("MarkAsTemplate", &tpl)["state"], "success");

    let err = env
        .run(VmOperation::Clone {
            template: tpl.clone(),
            name: "half-done".into(),
            ip: Ipv4Addr::new(10, 0, 0, 60),
            cpu: None,
            memory_gb: None,
        })
        .await
        .unwrap_err();
    let id = env.id("half-done");
    match err {
        ProviderError::Partial { rejection, vm } => {
            let message = render::rejection(&rejection);
            assert!(
                message.starts_with(&format!(
                    "已克隆出 half-done({id}),但自定义客户机网络失败: NicSettingMismatch"
                )),
                "{message}"
            );
            assert!(message.contains("已保留该虚拟机"), "{message}");
            assert_eq!(
                (vm.id.as_str(), vm.name.as_str()),
                (id.as_str(), "half-done")
            );
            assert_eq!(vm.power, PowerState::PoweredOff);
        }
        other => panic!("expected Partial with the clone, got {other:?}"),
    }
    assert_eq!(
        env.vm(&id)["power"],
        "poweredOff",
        "left as the copy made it"
    );
}

/// Powers VM1 off and marks it as a template (independently of the crate).
fn make_template(env: &Env) -> String {
    let tpl = env.id(VM1);
    assert_eq!(env.call("PowerOffVM_Task", &tpl)["state"], "success");
    assert_eq!(env.call("MarkAsTemplate", &tpl)["state"], "success");
    assert_eq!(env.vm(&tpl)["template"], true);
    tpl
}

#[tokio::test]
async fn clone_from_template_with_fixed_ip() {
    let Some(env) = Env::start().await else {
        return;
    };
    let tpl = make_template(&env);
    let tpl_vm = env.vm(&tpl);

    assert_eq!(
        env.rejected(VmOperation::PowerOn { vm: tpl.clone() }).await,
        format!("模板 {VM1} 不能开机")
    );

    let notes = Notes::default();
    let op = VmOperation::Clone {
        template: tpl.clone(),
        name: "web01".into(),
        ip: Ipv4Addr::new(10, 0, 0, 50),
        cpu: Some(2),
        memory_gb: Some(1),
    };
    let out = execute(&env.client, PROVIDER, &env.guest, &op, &notes)
        .await
        .unwrap();
    assert!(
        said(&out).starts_with(&format!(
            "克隆完成: web01(模板 {VM1}),IP 10.0.0.50/24,未配置网关,2 CPU / 1 GiB 内存"
        )),
        "{}",
        said(&out)
    );
    let vm = out.vm.expect("clone read back");
    let id = env.id("web01");
    assert_eq!(vm.id, id);
    let notes: Vec<String> = notes
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, n)| n.clone())
        .collect();
    for want in [
        "正在克隆磁盘",
        "正在自定义客户机网络: IP 10.0.0.50",
        "正在开机",
    ] {
        assert!(notes.iter().any(|n| n == want), "{want} not in {notes:?}");
    }
    let c = env.vm(&id);
    assert_eq!(c["power"], "poweredOn");
    assert_eq!(c["template"], false);
    assert_eq!(c["cpu"], 2);
    assert_eq!(c["memory_mb"], 1024);
    assert_eq!(c["ip"], "10.0.0.50");
    assert_eq!(c["hostname"], "web01");
    assert_eq!(
        c["parent"], tpl_vm["parent"],
        "cloned into the template's folder"
    );

    // A name that is no DNS label gets a host name from the IP (the seed's example).
    let op = VmOperation::Clone {
        template: tpl.clone(),
        name: "工具柜管理系统".into(),
        ip: Ipv4Addr::new(192, 168, 2, 182),
        cpu: None,
        memory_gb: None,
    };
    env.ok(op).await;
    let c = env.vm(&env.id("工具柜管理系统"));
    assert_eq!(c["hostname"], "vm-192-168-2-182");
    assert_eq!(c["ip"], "192.168.2.182");
    assert_eq!(c["cpu"], tpl_vm["cpu"]);

    // Refusals before anything is copied.
    let count = env.read(&["vms"]).as_object().unwrap().len();
    let m = env
        .rejected(VmOperation::Clone {
            template: tpl.clone(),
            name: "web02".into(),
            ip: Ipv4Addr::new(10, 0, 0, 50),
            cpu: None,
            memory_gb: None,
        })
        .await;
    assert_eq!(m, "IP 10.0.0.50 已被虚拟机 web01 使用");
    let m = env
        .rejected(VmOperation::Clone {
            template: tpl.clone(),
            name: "web01".into(),
            ip: Ipv4Addr::new(10, 0, 0, 51),
            cpu: None,
            memory_gb: None,
        })
        .await;
    assert_eq!(m, "已存在名为 web01 的虚拟机");
    let m = env
        .rejected(VmOperation::Clone {
            template: id.clone(),
            name: "web03".into(),
            ip: Ipv4Addr::new(10, 0, 0, 52),
            cpu: None,
            memory_gb: None,
        })
        .await;
    assert_eq!(m, "web01 不是模板");
    assert_eq!(env.read(&["vms"]).as_object().unwrap().len(), count);
}

#[tokio::test]
async fn ping_reports_tools_and_missing_ip() {
    if opsbot_testkit::program("ping", opsbot_testkit::fix::PING).is_none() {
        return;
    }
    let Some(env) = Env::start().await else {
        return;
    };
    let id = env.id(VM0);
    // vcsim's model guests report no IP and no running Tools.
    let m = env.rejected(VmOperation::Ping { vm: id.clone() }).await;
    assert_eq!(
        m,
        format!("{VM0} 已开机,但客户机没有报告 IP(VMware Tools 未运行,心跳未知),无法 ping")
    );
    env.call("PowerOffVM_Task", &id);
    assert_eq!(
        env.rejected(VmOperation::Ping { vm: id.clone() }).await,
        format!("{VM0} 不可达:虚拟机处于关机状态")
    );

    // A clone customised with 127.0.0.1 is the only guest IP a test may ping.
    let tpl = make_template(&env);
    env.ok(VmOperation::Clone {
        template: tpl,
        name: "loop".into(),
        ip: Ipv4Addr::LOCALHOST,
        cpu: None,
        memory_gb: None,
    })
    .await;
    let loop_id = env.id("loop");
    assert_eq!(env.vm(&loop_id)["ip"], "127.0.0.1");
    let out = env.ok(VmOperation::Ping { vm: loop_id }).await;
    eprintln!("{}", said(&out));
    assert!(
        said(&out).starts_with("loop (127.0.0.1) "),
        "{}",
        said(&out)
    );
    assert!(said(&out).contains("VMware Tools"), "{}", said(&out));
}

#[tokio::test]
async fn unreachable_vcenter_is_unavailable() {
    let Some(env) = Env::start().await else {
        return;
    };
    let id = env.id(VM0);
    let Env { vc, client, guest } = env;
    drop(vc);
    match execute(
        &client,
        PROVIDER,
        &guest,
        &VmOperation::PowerOff { vm: id },
        &NoProgress,
    )
    .await
    {
        Err(ProviderError::Unavailable { provider, .. }) => assert_eq!(provider, PROVIDER),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Progress notes, and a job cancellation asked for when the operation reports
/// `at` percent.
struct CancelAt {
    notes: Notes,
    cancel: opsbot_core::Cancel,
    at: u8,
}

impl Progress for CancelAt {
    fn report(&self, percent: u8, step: &Step) {
        self.notes.report(percent, step);
        if percent == self.at {
            self.cancel.request();
        }
    }

    fn cancel(&self) -> Option<&opsbot_core::Cancel> {
        Some(&self.cancel)
    }
}

/// vim25 `CancelTask` goes to the task's own MoRef: vcsim answers a task it knows with
/// a fault about the call (its tasks have ended by the time they are returned: 0.24's
/// simulator runs them synchronously and does not implement CancelTask; vCenter
/// answers an ended task with InvalidState), and a task it does not know with
/// ManagedObjectNotFound.
#[tokio::test]
async fn cancel_task_reaches_the_tasks_moref() {
    let Some(env) = Env::start().await else {
        return;
    };
    let vm = opsbot_vsphere::client::MoRef {
        kind: "VirtualMachine".into(),
        value: env.id(VM0),
    };
    let answer = env.client.invoke("PowerOffVM_Task", &vm, "").await.unwrap();
    let task = answer.child("returnval").unwrap().moref().unwrap();
    env.client.wait_task(&task, &mut |_| {}).await.unwrap();
    let err = env.client.cancel_task(&task).await.unwrap_err();
    let kind = err
        .fault_kind()
        .unwrap_or_else(|| panic!("a fault: {err:?}"));
    assert!(
        kind == "InvalidState" || kind == "MethodNotFound",
        "an ended task refuses: {err:?}"
    );
    let gone = opsbot_vsphere::client::MoRef {
        kind: "Task".into(),
        value: "task-404".into(),
    };
    let err = env.client.cancel_task(&gone).await.unwrap_err();
    assert_eq!(err.fault_kind(), Some("ManagedObjectNotFound"), "{err:?}");
}

/// A clone cancelled before its copy starts stops with nothing made; one whose copy
/// has already finished when the cancellation comes is completed, and says so.
#[tokio::test]
async fn a_clone_is_cancelled_until_its_copy_is_done() {
    let Some(env) = Env::start().await else {
        return;
    };
    let tpl = make_template(&env);
    let clone = |name: &str, last: u8| VmOperation::Clone {
        template: tpl.clone(),
        name: name.into(),
        ip: Ipv4Addr::new(10, 0, 0, last),
        cpu: None,
        memory_gb: None,
    };

    // Asked at the first note (10 %, before CloneVM_Task).
    let early = CancelAt {
        notes: Notes::default(),
        cancel: opsbot_core::Cancel::default(),
        at: 10,
    };
    match execute(
        &env.client,
        PROVIDER,
        &env.guest,
        &clone("cancel-early", 61),
        &early,
    )
    .await
    {
        Err(ProviderError::Cancelled) => {}
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert!(
        env.read(&["vms"]).get("cancel-early").is_none(),
        "nothing cloned"
    );

    // Asked when the copy reports done (70 %): too late, the clone is finished.
    let late = CancelAt {
        notes: Notes::default(),
        cancel: opsbot_core::Cancel::default(),
        at: 70,
    };
    let out = execute(
        &env.client,
        PROVIDER,
        &env.guest,
        &clone("cancel-late", 62),
        &late,
    )
    .await
    .unwrap();
    assert!(
        said(&out).starts_with("克隆完成: cancel-late"),
        "{}",
        said(&out)
    );
    let notes: Vec<String> = late
        .notes
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, n)| n.clone())
        .collect();
    assert!(
        notes.contains(&"未能取消(克隆已完成,无法再取消),操作继续".to_string()),
        "{notes:?}"
    );
    assert!(env.read(&["vms"]).get("cancel-late").is_some());
}

/// A job's progress whose claim holds for the first `held_for` questions and is gone
/// after (the store's answer, without a store), counting the questions.
struct UnderClaim {
    held_for: usize,
    asked: AtomicUsize,
}

impl UnderClaim {
    fn lost_after(held_for: usize) -> Self {
        UnderClaim {
            held_for,
            asked: AtomicUsize::new(0),
        }
    }

    fn lost() -> Self {
        Self::lost_after(0)
    }

    fn held() -> Self {
        Self::lost_after(usize::MAX)
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl ClaimCheck for UnderClaim {
    async fn still_held(&self) -> bool {
        self.asked.fetch_add(1, Ordering::SeqCst) < self.held_for
    }
}

impl Progress for UnderClaim {
    fn report(&self, _percent: u8, _step: &Step) {}

    fn claim(&self) -> Option<&dyn ClaimCheck> {
        Some(self)
    }
}

/// A job taken over while its instance was paused: when the instance resumes, the
/// power-on it was about to start is not started (the VM stays off in vCenter) and
/// the job hears FencedOut. Under a claim that still holds it happens.
#[tokio::test]
async fn a_job_whose_claim_is_gone_does_not_power_on() {
    let Some(env) = Env::start().await else {
        return;
    };
    let id = env.id(VM0);
    assert_eq!(env.call("PowerOffVM_Task", &id)["state"], "success");
    assert_eq!(env.vm(&id)["power"], "poweredOff");
    let power_on = VmOperation::PowerOn { vm: id.clone() };

    let lost = UnderClaim::lost();
    match execute(&env.client, PROVIDER, &env.guest, &power_on, &lost).await {
        Err(ProviderError::FencedOut) => {}
        other => panic!("expected FencedOut, got {other:?}"),
    }
    assert_eq!(lost.asked(), 1);
    assert_eq!(env.vm(&id)["power"], "poweredOff", "the task was started");

    let held = UnderClaim::held();
    let out = execute(&env.client, PROVIDER, &env.guest, &power_on, &held)
        .await
        .unwrap();
    assert_eq!(said(&out), format!("{VM0} 已开机"));
    assert_eq!(held.asked(), 1);
    assert_eq!(env.vm(&id)["power"], "poweredOn");
}

/// Every operation that changes something in vCenter asks for the claim before it
/// does, and says FencedOut (not a fault or an outage) when it is gone: nothing in
/// vCenter changes.
#[tokio::test]
async fn every_change_of_a_job_whose_claim_is_gone_is_refused() {
    let Some(env) = Env::start().await else {
        return;
    };
    let id = env.id(VM0);
    let tpl = make_template(&env);
    let before = env.vm(&id);
    assert_eq!(before["power"], "poweredOn");
    let vms_before = env.read(&["vms"]);
    let old_cpu = u32::try_from(before["cpu"].as_u64().unwrap()).unwrap();
    let vm = || id.clone();
    let ops = [
        VmOperation::PowerOff { vm: vm() },
        VmOperation::Shutdown { vm: vm() },
        VmOperation::Reboot { vm: vm() },
        VmOperation::SetCpu {
            vm: vm(),
            count: old_cpu + 1,
        },
        VmOperation::SetMemory { vm: vm(), gb: 8 },
        VmOperation::AddDisk {
            vm: vm(),
            gb: 1,
            datastore: None,
        },
        VmOperation::SetNetwork {
            vm: vm(),
            network: "VM Network".into(),
        },
        VmOperation::Rename {
            vm: vm(),
            new_name: "fenced-rename".into(),
        },
        VmOperation::Clone {
            template: tpl.clone(),
            name: "fenced-clone".into(),
            ip: Ipv4Addr::new(10, 0, 0, 71),
            cpu: None,
            memory_gb: None,
        },
    ];
    for op in ops {
        let lost = UnderClaim::lost();
        match execute(&env.client, PROVIDER, &env.guest, &op, &lost).await {
            Err(ProviderError::FencedOut) => {}
            other => panic!("{op:?}: expected FencedOut, got {other:?}"),
        }
        assert_eq!(lost.asked(), 1, "{op:?}");
        assert_eq!(env.vm(&id), before, "{op:?} changed the VM");
        assert_eq!(env.read(&["vms"]), vms_before, "{op:?} changed the VMs");
    }

    // Destroy_Task, on a VM that is off (the only kind it deletes).
    assert_eq!(env.call("PowerOffVM_Task", &id)["state"], "success");
    let lost = UnderClaim::lost();
    match execute(
        &env.client,
        PROVIDER,
        &env.guest,
        &VmOperation::Delete { vm: id.clone() },
        &lost,
    )
    .await
    {
        Err(ProviderError::FencedOut) => {}
        other => panic!("expected FencedOut, got {other:?}"),
    }
    assert_eq!(lost.asked(), 1);
    assert_eq!(env.read(&["vms"]), vms_before, "the VM was deleted");

    // Gone after the copy: the clone's next task (its customisation) is not started,
    // and the job hears FencedOut rather than a failed step. The copy stays in vCenter.
    let late = UnderClaim::lost_after(1);
    let clone = VmOperation::Clone {
        template: tpl.clone(),
        name: "fenced-late".into(),
        ip: Ipv4Addr::new(10, 0, 0, 72),
        cpu: None,
        memory_gb: None,
    };
    match execute(&env.client, PROVIDER, &env.guest, &clone, &late).await {
        Err(ProviderError::FencedOut) => {}
        other => panic!("expected FencedOut, got {other:?}"),
    }
    assert_eq!(late.asked(), 2);
    let copy = env.read(&["vms"])["fenced-late"]
        .as_str()
        .expect("the copy was made")
        .to_string();
    assert_eq!(
        env.vm(&copy)["power"],
        "poweredOff",
        "it was not powered on"
    );
}
