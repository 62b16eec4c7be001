"""Independent reader of the simulator for the tests: uses vsoap.py (stdlib only), never the
crate under test. Usage: reader.py URL COMMAND [ARG]; prints JSON.
  counts          -> object counts per type and the network names
  vm ID           -> one VM's fields as read from the raw properties
  logout COOKIE   -> logs out the session with that cookie (to expire another client's session)
  act ID METHOD [ARGS_XML] -> runs METHOD on VM ID as another client would (an outside change)
  vm-id NAME      -> the MoRef value of the VM with that name
  set-field ID NAME VALUE -> sets custom attribute NAME (defined if missing) on VM ID
"""
import json, os, sys
sys.path.insert(0, os.environ["VSOAP_DIR"])
from vsoap import Soap, mo, rpex, view_traversal_spec, objects, returnval, obj_props, NS, XSI_TYPE  # noqa: E402


def connect(url, login=True):
    s = Soap(url)
    _, _, _, t = s.post('<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>')
    sc = {c.tag.split("}")[1]: c.text for c in returnval(t)[0]}
    if login:
        s.post('<Login xmlns="urn:vim25">%s<userName>%s</userName><password>%s</password></Login>'
               % (mo("_this", "SessionManager", sc["sessionManager"]), s.user, s.password))
    return s, sc


def view_objects(s, sc, types, props_by_type):
    _, _, _, t = s.post('<CreateContainerView xmlns="urn:vim25">%s%s%s<recursive>true</recursive></CreateContainerView>'
                        % (mo("_this", "ViewManager", sc["viewManager"]), mo("container", "Folder", sc["rootFolder"]),
                           "".join("<type>%s</type>" % ty for ty in types)))
    view = returnval(t)[0].text
    _, _, _, t = s.post(rpex(sc["propertyCollector"], view_traversal_spec(view, props_by_type)))
    _, objs = objects(t)
    return objs


def text(el):
    return None if el is None else el.text


def main():
    url, cmd = sys.argv[1], sys.argv[2]
    if cmd == "logout":
        s, sc = connect(url, login=False)
        s.cookie = sys.argv[3]
        st, _, _, _ = s.post('<Logout xmlns="urn:vim25">%s</Logout>' % mo("_this", "SessionManager", sc["sessionManager"]))
        print(json.dumps({"status": st}))
        return
    s, sc = connect(url)
    if cmd == "counts":
        out = {}
        vms = view_objects(s, sc, ["VirtualMachine"], [("VirtualMachine", ["name", "summary.config.template"])])
        out["vms"] = len(vms)
        out["templates"] = sum(1 for v in vms if text(v.get("summary.config.template")) == "true")
        for key, typ in [("hosts", "HostSystem"), ("clusters", "ClusterComputeResource"),
                         ("datacenters", "Datacenter"), ("datastores", "Datastore")]:
            out[key] = len(view_objects(s, sc, [typ], [(typ, ["name"])]))
        nets = view_objects(s, sc, ["Network"], [("Network", ["name"]), ("DistributedVirtualPortgroup", ["name"])])
        out["networks"] = sorted([n["_obj"][0], text(n.get("name"))] for n in nets)
        print(json.dumps(out))
    elif cmd == "vm":
        vid = sys.argv[3]
        paths = ["name", "config.uuid", "config.instanceUuid", "config.hardware.numCPU", "config.hardware.memoryMB",
                 "runtime.powerState", "runtime.host", "guest.ipAddress", "guest.hostName", "guest.toolsRunningStatus",
                 "summary.config.template", "config.hardware.device", "parent"]
        _, _, _, t = s.post(obj_props(sc["propertyCollector"], "VirtualMachine", [vid], paths))
        _, objs = objects(t)
        v = objs[0]
        host = text(v["runtime.host"])
        _, _, _, t = s.post(obj_props(sc["propertyCollector"], "HostSystem", [host], ["name"]))
        host_name = text(objects(t)[1][0]["name"])
        folder = text(v["parent"])
        _, _, _, t = s.post(obj_props(sc["propertyCollector"], "Folder", [folder], ["name"]))
        folder_name = text(objects(t)[1][0]["name"])
        macs, disks = [], []
        for d in v["config.hardware.device"]:
            if d.find("v:macAddress", NS) is not None:
                macs.append(d.find("v:macAddress", NS).text)
            if d.get(XSI_TYPE, "").split(":")[-1] == "VirtualDisk":
                disks.append(int(d.find("v:capacityInKB", NS).text))
        print(json.dumps({
            "name": text(v["name"]), "uuid": text(v["config.uuid"]), "instance_uuid": text(v["config.instanceUuid"]),
            "cpu": int(text(v["config.hardware.numCPU"])), "memory_mb": int(text(v["config.hardware.memoryMB"])),
            "power": text(v["runtime.powerState"]), "host": host_name, "folder": folder_name,
            "ip": text(v.get("guest.ipAddress")), "tools": text(v.get("guest.toolsRunningStatus")), "hostname": text(v.get("guest.hostName")),
            "template": text(v["summary.config.template"]) == "true", "macs": macs, "disks_kb": disks,
        }))
    elif cmd == "act":
        vid, method = sys.argv[3], sys.argv[4]
        args = sys.argv[5] if len(sys.argv) > 5 else ""
        st, _, _, t = s.post('<%s xmlns="urn:vim25">%s%s</%s>' % (method, mo("_this", "VirtualMachine", vid), args, method))
        task = returnval(t)
        print(json.dumps({"status": st, "task": text(task[0]) if task else None}))
    elif cmd == "set-field":
        vid, name, value = sys.argv[3], sys.argv[4], sys.argv[5]
        cfm = sc["customFieldsManager"]
        _, objs = objects(s.post(obj_props(sc["propertyCollector"], "CustomFieldsManager", [cfm], ["field"]))[3])
        key = None
        field = objs[0].get("field") if objs else None
        for d in (field if field is not None else []):
            if d.find("v:name", NS).text == name:
                key = d.find("v:key", NS).text
        if key is None:
            _, _, _, t = s.post('<AddCustomFieldDef xmlns="urn:vim25">%s<name>%s</name><moType>VirtualMachine</moType></AddCustomFieldDef>'
                                % (mo("_this", "CustomFieldsManager", cfm), name))
            key = returnval(t)[0].find("v:key", NS).text
        st, _, _, t = s.post('<SetField xmlns="urn:vim25">%s%s<key>%s</key><value>%s</value></SetField>'
                             % (mo("_this", "CustomFieldsManager", cfm), mo("entity", "VirtualMachine", vid), key, value))
        print(json.dumps({"status": st, "key": int(key)}))
    elif cmd == "vm-id":
        name = sys.argv[3]
        vms = view_objects(s, sc, ["VirtualMachine"], [("VirtualMachine", ["name"])])
        print(json.dumps([v["_obj"][1] for v in vms if text(v.get("name")) == name]))
    else:
        sys.exit("unknown command " + cmd)


main()
