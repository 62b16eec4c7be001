//! Request bodies for the VM operations, as strings in WSDL element order.
//!
//! Pure functions: no I/O, so every body can be compared with the requests verified
//! against the simulator (`tests/fixtures/calls/*.xml`). `xsi:type` is written on
//! the abstract-typed fields a real vCenter needs it on (`device`, `backing`, `identity`,
//! `hostName`, `ip`).

use crate::client::MoRef;
use crate::guest::WindowsGuest;
use crate::xml::{escape, Node};
use std::net::Ipv4Addr;

/// `ReconfigVM_Task` arguments changing CPU count and/or memory (numCPUs before memoryMB).
pub fn reconfig_cpu_memory(num_cpus: Option<u32>, memory_mb: Option<u64>) -> String {
    let mut s = String::from("<spec>");
    if let Some(n) = num_cpus {
        s.push_str(&format!("<numCPUs>{n}</numCPUs>"));
    }
    if let Some(m) = memory_mb {
        s.push_str(&format!("<memoryMB>{m}</memoryMB>"));
    }
    s.push_str("</spec>");
    s
}

/// A new thin disk to create on a SCSI controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDisk {
    /// Negative temporary device key; the server assigns the real one.
    pub temp_key: i32,
    /// `[datastore]` to place the disk on that datastore; empty for the VM's folder.
    pub file_name: String,
    pub controller_key: i32,
    pub unit_number: u32,
    pub capacity_kb: u64,
}

/// `ReconfigVM_Task` arguments adding one thin-provisioned disk.
pub fn reconfig_add_disk(d: &NewDisk) -> String {
    format!(
        concat!(
            "<spec><deviceChange><operation>add</operation><fileOperation>create</fileOperation>",
            r#"<device xsi:type="VirtualDisk"><key>{}</key>"#,
            r#"<backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>{}</fileName>"#,
            "<diskMode>persistent</diskMode><thinProvisioned>true</thinProvisioned></backing>",
            "<controllerKey>{}</controllerKey><unitNumber>{}</unitNumber><capacityInKB>{}</capacityInKB>",
            "</device></deviceChange></spec>"
        ),
        d.temp_key,
        escape(&d.file_name),
        d.controller_key,
        d.unit_number,
        d.capacity_kb
    )
}

/// Where a NIC should be connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicTarget {
    /// A standard port group (`Network`), by name and MoRef.
    Standard { name: String, network: MoRef },
    /// A distributed port group: the switch's `uuid` and the port group's `key`.
    Distributed {
        switch_uuid: String,
        portgroup_key: String,
    },
}

impl NicTarget {
    /// The `<backing>` element for this target.
    pub fn backing_xml(&self) -> String {
        match self {
            NicTarget::Standard { name, network } => format!(
                r#"<backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>{}</deviceName>{}</backing>"#,
                escape(name),
                network.to_xml("network")
            ),
            NicTarget::Distributed {
                switch_uuid,
                portgroup_key,
            } => format!(
                concat!(
                    r#"<backing xsi:type="VirtualEthernetCardDistributedVirtualPortBackingInfo">"#,
                    "<port><switchUuid>{}</switchUuid><portgroupKey>{}</portgroupKey></port></backing>"
                ),
                escape(switch_uuid),
                escape(portgroup_key)
            ),
        }
    }
}

/// `ReconfigVM_Task` arguments editing one NIC: the device is sent back whole, as read,
/// with only its backing replaced (vcsim replaces the device with what it is sent, and
/// drops a NIC sent without `deviceInfo`).
pub fn reconfig_edit_nic(nic: &Node, target: &NicTarget) -> String {
    let mut s = String::from("<spec><deviceChange><operation>edit</operation>");
    let kind = nic.xsi_type.as_deref().unwrap_or("VirtualEthernetCard");
    s.push_str(&format!(r#"<device xsi:type="{}">"#, escape(kind)));
    let mut wrote_backing = false;
    for c in &nic.children {
        if c.name == "backing" {
            s.push_str(&target.backing_xml());
            wrote_backing = true;
        } else {
            // The backing comes right after deviceInfo in VirtualDevice's sequence.
            if !wrote_backing && !matches!(c.name.as_str(), "key" | "deviceInfo") {
                s.push_str(&target.backing_xml());
                wrote_backing = true;
            }
            write_node(&mut s, c);
        }
    }
    if !wrote_backing {
        s.push_str(&target.backing_xml());
    }
    s.push_str("</device></deviceChange></spec>");
    s
}

/// Serialises a node read from the server back into request XML: element names, `type`
/// attributes of MoRefs, `xsi:type` of polymorphic values, escaped text.
fn write_node(out: &mut String, n: &Node) {
    out.push('<');
    out.push_str(&n.name);
    if let Some(t) = &n.xsi_type {
        out.push_str(&format!(r#" xsi:type="{}""#, escape(t)));
    }
    for (k, v) in &n.attrs {
        out.push_str(&format!(r#" {}="{}""#, k, escape(v)));
    }
    out.push('>');
    if n.children.is_empty() {
        out.push_str(&escape(&n.text));
    } else {
        for c in &n.children {
            write_node(out, c);
        }
    }
    out.push_str("</");
    out.push_str(&n.name);
    out.push('>');
}

/// `Rename_Task` arguments.
pub fn rename(new_name: &str) -> String {
    format!("<newName>{}</newName>", escape(new_name))
}

/// Where a clone goes (`RelocateSpec` fields in schema order: datastore, pool, host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneTarget {
    pub folder: MoRef,
    pub name: String,
    pub datastore: Option<MoRef>,
    pub pool: MoRef,
    pub host: Option<MoRef>,
}

/// `CloneVM_Task` arguments: folder, name, spec{location, template=false, powerOn}. The
/// guest is customised afterwards with `CustomizeVM_Task` (vcsim ignores customisation
/// inside the clone spec).
pub fn clone_vm(t: &CloneTarget, power_on: bool) -> String {
    let mut s = t.folder.to_xml("folder");
    s.push_str(&format!("<name>{}</name><spec><location>", escape(&t.name)));
    if let Some(ds) = &t.datastore {
        s.push_str(&ds.to_xml("datastore"));
    }
    s.push_str(&t.pool.to_xml("pool"));
    if let Some(h) = &t.host {
        s.push_str(&h.to_xml("host"));
    }
    s.push_str(&format!(
        "</location><template>false</template><powerOn>{power_on}</powerOn></spec>"
    ));
    s
}

/// The guest identity and network of a customisation: LinuxPrep, or Sysprep when
/// `windows` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestCustomization {
    pub host_name: String,
    pub domain: String,
    pub dns_servers: Vec<Ipv4Addr>,
    pub ip: Ipv4Addr,
    pub subnet_mask: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
    pub windows: Option<WindowsGuest>,
}

/// A `CustomizationSpec` (identity, globalIPSettings, nicSettingMap) with a fixed name
/// and a fixed IP on the first NIC, elements in WSDL order.
pub fn customization_spec(c: &GuestCustomization) -> String {
    let mut s = match &c.windows {
        None => format!(
            r#"<identity xsi:type="CustomizationLinuxPrep"><hostName xsi:type="CustomizationFixedName"><name>{}</name></hostName><domain>{}</domain></identity>"#,
            escape(&c.host_name),
            escape(&c.domain)
        ),
        Some(w) => sysprep(&c.host_name, w),
    };
    s.push_str("<globalIPSettings>");
    for d in &c.dns_servers {
        s.push_str(&format!("<dnsServerList>{d}</dnsServerList>"));
    }
    s.push_str("</globalIPSettings>");
    s.push_str(&format!(
        r#"<nicSettingMap><adapter><ip xsi:type="CustomizationFixedIp"><ipAddress>{}</ipAddress></ip><subnetMask>{}</subnetMask>"#,
        c.ip, c.subnet_mask
    ));
    if let Some(g) = c.gateway {
        s.push_str(&format!("<gateway>{g}</gateway>"));
    }
    // Windows takes DNS per adapter; Linux from globalIPSettings.
    if c.windows.is_some() {
        for d in &c.dns_servers {
            s.push_str(&format!("<dnsServerList>{d}</dnsServerList>"));
        }
        s.push_str(&format!("<dnsDomain>{}</dnsDomain>", escape(&c.domain)));
    }
    s.push_str("</adapter></nicSettingMap>");
    s
}

/// A `CustomizationSysprep` identity: guiUnattended, userData, identification.
fn sysprep(computer_name: &str, w: &WindowsGuest) -> String {
    format!(
        concat!(
            r#"<identity xsi:type="CustomizationSysprep"><guiUnattended>"#,
            r#"<password><value>{pw}</value><plainText>true</plainText></password>"#,
            r#"<timeZone>{tz}</timeZone><autoLogon>false</autoLogon><autoLogonCount>1</autoLogonCount>"#,
            r#"</guiUnattended><userData><fullName>{org}</fullName><orgName>{org}</orgName>"#,
            r#"<computerName xsi:type="CustomizationFixedName"><name>{name}</name></computerName>"#,
            r#"<productId>{key}</productId></userData>"#,
            r#"<identification><joinWorkgroup>{wg}</joinWorkgroup></identification></identity>"#
        ),
        pw = escape(&w.admin_password),
        tz = w.timezone,
        org = escape(&w.organization),
        name = escape(computer_name),
        key = escape(&w.product_key),
        wg = escape(&w.workgroup),
    )
}

/// `CustomizeVM_Task` arguments.
pub fn customize_vm(c: &GuestCustomization) -> String {
    format!("<spec>{}</spec>", customization_spec(c))
}

/// The guest host name for a clone: the VM name when it is a valid DNS label (lowercased),
/// otherwise `vm-<ip with dashes>` (names like `工具柜管理系统`).
pub fn guest_host_name(name: &str, ip: Ipv4Addr) -> String {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        name.to_lowercase()
    } else {
        format!("vm-{}", ip.to_string().replace('.', "-"))
    }
}

/// The NetBIOS computer name of a Windows clone (at most 15 characters): the VM name
/// upper-cased when it fits, otherwise `VM` and the IP's octets zero-padded.
pub fn windows_computer_name(name: &str, ip: Ipv4Addr) -> String {
    let host = guest_host_name(name, ip);
    if host.len() <= 15 && !host.starts_with("vm-") {
        host.to_uppercase()
    } else {
        let [a, b, c, d] = ip.octets();
        format!("VM{a:03}{b:03}{c:03}{d:03}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    /// Requests verified against the simulator (written by `tests/common/vsoap.py --write`).
    const CALLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/calls");

    /// The args of the verified request in `calls/<file>`: what follows `_this` in the
    /// method element, whitespace between tags removed.
    fn verified_args(file: &str, method: &str) -> Option<String> {
        let path = format!("{CALLS}/{file}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let open = format!(r#"<{method} xmlns="urn:vim25">"#);
        let start = text.find(&open)? + open.len();
        let end = start + text[start..].find(&format!("</{method}>"))?;
        let body = &text[start..end];
        let after_this = body.find("</_this>")? + "</_this>".len();
        Some(normalise(&body[after_this..]))
    }

    fn normalise(s: &str) -> String {
        let mut out = String::new();
        for part in s.split('>') {
            if out.is_empty() && part.is_empty() {
                continue;
            }
            out.push_str(part.trim_start());
            out.push('>');
        }
        out.pop();
        out.trim().to_string()
    }

    /// Compares with the verified request.
    fn check(file: &str, method: &str, ours: &str) {
        let expected = verified_args(file, method)
            .unwrap_or_else(|| panic!("{CALLS}/{file} holds no {method} request"));
        assert_eq!(normalise(ours), expected, "{file}");
    }

    #[test]
    fn cpu_and_memory_match_verified_request() {
        check(
            "32-ReconfigVM_Task-cpu-mem.xml",
            "ReconfigVM_Task",
            &reconfig_cpu_memory(Some(4), Some(2048)),
        );
        assert_eq!(
            reconfig_cpu_memory(None, Some(1024)),
            "<spec><memoryMB>1024</memoryMB></spec>"
        );
    }

    #[test]
    fn add_disk_matches_verified_request() {
        let d = NewDisk {
            temp_key: -101,
            file_name: String::new(),
            controller_key: 202,
            unit_number: 1,
            capacity_kb: 1_048_576,
        };
        check(
            "34-ReconfigVM_Task-add-disk.xml",
            "ReconfigVM_Task",
            &reconfig_add_disk(&d),
        );
    }

    fn nic_as_read() -> Node {
        // The NIC as vcsim returns it, minus the fields the verified request left out.
        parse(concat!(
            r#"<VirtualDevice xmlns:X="http://www.w3.org/2001/XMLSchema-instance" X:type="VirtualE1000"><key>4000</key>"#,
            "<deviceInfo><label>ethernet-0</label><summary>DVSwitch: fea97929-4b2d-5972-b146-930c6d0b4014</summary></deviceInfo>",
            r#"<backing X:type="VirtualEthernetCardDistributedVirtualPortBackingInfo"><port><switchUuid>x</switchUuid><portgroupKey>dvportgroup-13</portgroupKey></port></backing>"#,
            "<connectable><startConnected>true</startConnected><allowGuestControl>true</allowGuestControl><connected>false</connected></connectable>",
            "<controllerKey>100</controllerKey><unitNumber>7</unitNumber><addressType>generated</addressType><macAddress>00:0c:29:36:63:62</macAddress>",
            "</VirtualDevice>"
        ))
        .unwrap()
    }

    #[test]
    fn nic_edits_match_verified_requests() {
        let nic = nic_as_read();
        check(
            "35-ReconfigVM_Task-nic-to-dvportgroup.xml",
            "ReconfigVM_Task",
            &reconfig_edit_nic(
                &nic,
                &NicTarget::Distributed {
                    switch_uuid: "fea97929-4b2d-5972-b146-930c6d0b4014".into(),
                    portgroup_key: "dvportgroup-13".into(),
                },
            ),
        );
        check(
            "37-ReconfigVM_Task-nic-to-network.xml",
            "ReconfigVM_Task",
            &reconfig_edit_nic(
                &nic,
                &NicTarget::Standard {
                    name: "VM Network".into(),
                    network: MoRef::new("Network", "network-7"),
                },
            ),
        );
    }

    #[test]
    fn nic_edit_keeps_nested_types_and_inserts_a_missing_backing() {
        let nic = parse(concat!(
            r#"<VirtualDevice xmlns:X="http://www.w3.org/2001/XMLSchema-instance" X:type="VirtualVmxnet3"><key>4000</key>"#,
            r#"<deviceInfo X:type="Description"><label>a&amp;b</label><summary>s</summary></deviceInfo>"#,
            r#"<slotInfo X:type="VirtualDevicePciBusSlotInfo"><pciSlotNumber>32</pciSlotNumber></slotInfo>"#,
            "<controllerKey>100</controllerKey></VirtualDevice>"
        ))
        .unwrap();
        let xml = reconfig_edit_nic(
            &nic,
            &NicTarget::Distributed {
                switch_uuid: "u".into(),
                portgroup_key: "k".into(),
            },
        );
        assert_eq!(
            xml,
            concat!(
                r#"<spec><deviceChange><operation>edit</operation><device xsi:type="VirtualVmxnet3"><key>4000</key>"#,
                r#"<deviceInfo xsi:type="Description"><label>a&amp;b</label><summary>s</summary></deviceInfo>"#,
                r#"<backing xsi:type="VirtualEthernetCardDistributedVirtualPortBackingInfo"><port><switchUuid>u</switchUuid><portgroupKey>k</portgroupKey></port></backing>"#,
                r#"<slotInfo xsi:type="VirtualDevicePciBusSlotInfo"><pciSlotNumber>32</pciSlotNumber></slotInfo>"#,
                "<controllerKey>100</controllerKey></device></deviceChange></spec>"
            )
        );
    }

    #[test]
    fn rename_matches_verified_request() {
        check(
            "38-Rename_Task.xml",
            "Rename_Task",
            &rename("DC0_H0_VM0-renamed"),
        );
        assert_eq!(rename("a<b"), "<newName>a&lt;b</newName>");
    }

    #[test]
    fn clone_location_is_in_schema_order() {
        let t = CloneTarget {
            folder: MoRef::new("Folder", "folder-3"),
            name: "clone-1".into(),
            datastore: Some(MoRef::new(
                "Datastore",
                "/tmp/govcsim-DC0-LocalDS_0-3814465839@folder-5",
            )),
            pool: MoRef::new("ResourcePool", "resgroup-22"),
            host: Some(MoRef::new("HostSystem", "host-21")),
        };
        let ours = clone_vm(&t, false);
        // The verified request also carries a customization, which we send separately.
        let expected = verified_args("41-CloneVM_Task.xml", "CloneVM_Task")
            .expect("41-CloneVM_Task.xml holds a CloneVM_Task request");
        let without_custom = {
            let a = expected.find("<customization>").unwrap();
            let b = expected.find("</customization>").unwrap() + "</customization>".len();
            format!("{}{}", &expected[..a], &expected[b..])
        }
        .replace("clone-1795312462", "clone-1")
        .replace("<powerOn>true</powerOn>", "<powerOn>false</powerOn>");
        assert_eq!(ours, without_custom);
        assert!(ours.starts_with(r#"<folder type="Folder">folder-3</folder><name>clone-1</name>"#));
    }

    #[test]
    fn customization_matches_verified_request() {
        let c = GuestCustomization {
            host_name: "web01".into(),
            domain: "example.com".into(),
            dns_servers: vec![Ipv4Addr::new(10, 0, 0, 2)],
            ip: Ipv4Addr::new(10, 0, 0, 50),
            subnet_mask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
            windows: None,
        };
        check(
            "44-CustomizeVM_Task.xml",
            "CustomizeVM_Task",
            &customize_vm(&c),
        );
        let no_gw = GuestCustomization {
            gateway: None,
            dns_servers: vec![],
            ..c.clone()
        };
        assert!(customize_vm(&no_gw).contains(
            "<globalIPSettings></globalIPSettings><nicSettingMap><adapter><ip xsi:type=\"CustomizationFixedIp\"><ipAddress>10.0.0.50</ipAddress></ip><subnetMask>255.255.255.0</subnetMask></adapter>"
        ));
    }

    #[test]
    fn windows_gets_sysprep_in_schema_order_and_dns_per_adapter() {
        let c = GuestCustomization {
            host_name: "WEB01".into(),
            domain: "corp.example.com".into(),
            dns_servers: vec![Ipv4Addr::new(10, 0, 0, 2)],
            ip: Ipv4Addr::new(10, 0, 0, 50),
            subnet_mask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
            windows: Some(WindowsGuest {
                admin_password: "P&ss<1>".into(),
                timezone: 210,
                workgroup: "WORKGROUP".into(),
                organization: "运维部".into(),
                product_key: String::new(),
            }),
        };
        let xml = customize_vm(&c);
        let doc = parse(&format!(
            r#"<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{xml}</r>"#
        ))
        .unwrap();
        let id = doc.path("spec.identity").unwrap();
        assert_eq!(id.xsi_type.as_deref(), Some("CustomizationSysprep"));
        let order: Vec<&str> = id.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(order, ["guiUnattended", "userData", "identification"]);
        assert_eq!(
            id.text_at("guiUnattended.password.value"),
            Some("P&ss<1>"),
            "escaped on the wire, intact when read"
        );
        let order: Vec<&str> = id
            .child("guiUnattended")
            .unwrap()
            .children
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            order,
            ["password", "timeZone", "autoLogon", "autoLogonCount"]
        );
        assert_eq!(id.text_at("userData.computerName.name"), Some("WEB01"));
        let adapter = doc.path("spec.nicSettingMap.adapter").unwrap();
        let order: Vec<&str> = adapter.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            order,
            ["ip", "subnetMask", "gateway", "dnsServerList", "dnsDomain"]
        );
    }

    #[test]
    fn windows_names_fit_netbios() {
        let ip = Ipv4Addr::new(192, 168, 2, 182);
        assert_eq!(windows_computer_name("web-01", ip), "WEB-01");
        assert_eq!(
            windows_computer_name("工具柜管理系统", ip),
            "VM192168002182"
        );
        assert_eq!(
            windows_computer_name("a-very-long-server-name", ip),
            "VM192168002182"
        );
    }

    #[test]
    fn host_name_falls_back_to_the_ip() {
        let ip = Ipv4Addr::new(192, 168, 2, 182);
        assert_eq!(guest_host_name("Web-01", ip), "web-01");
        assert_eq!(guest_host_name("工具柜管理系统", ip), "vm-192-168-2-182");
        assert_eq!(guest_host_name("a_b", ip), "vm-192-168-2-182");
        assert_eq!(guest_host_name("-a", ip), "vm-192-168-2-182");
        assert_eq!(guest_host_name(&"a".repeat(64), ip), "vm-192-168-2-182");
    }
}
