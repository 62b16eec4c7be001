#!/usr/bin/env python3
"""Replay and check the vim25 SOAP calls opsbot makes against a vCenter simulator.

The vSphere tests import it (through reader.py) to read the simulator independently of the
crate under test; run with --write it (re)writes the verified requests that
tests/fixtures/calls/ holds a selection of.

Usage: vsoap.py [--write DIR] URL          (URL like http://user:pass@127.0.0.1:8989/sdk)
  --write DIR  also (re)write DIR/NN-name.xml with the exact request and an abridged response.
Exit status 0 when every check passed, 1 otherwise. Standard library only.

The run mutates the inventory (powers VMs, reconfigures one, marks one as template, clones and
destroys a clone), so point it at a fresh simulator (tools/vcsim/build-vcsim.sh builds one;
start it with `vcsimlite -l 127.0.0.1:0` and pass the URL it prints).
"""
import http.client, re, ssl, sys, time, os, base64
import xml.etree.ElementTree as ET
from urllib.parse import urlparse, unquote

NS = {"s": "http://schemas.xmlsoap.org/soap/envelope/", "v": "urn:vim25",
      "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
ENV_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n<soapenv:Body>\n')
ENV_TAIL = '\n</soapenv:Body>\n</soapenv:Envelope>\n'
SOAP_ACTION = "urn:vim25/6.5"   # vcsim reports apiVersion 6.5; use the server's about.apiVersion


class Soap:
    def __init__(self, url):
        u = urlparse(url)
        self.user = unquote(u.username or "user")
        self.password = unquote(u.password or "pass")
        self.path = u.path or "/sdk"
        self.host, self.port, self.https = u.hostname, u.port or (443 if u.scheme == "https" else 80), u.scheme == "https"
        self.cookie = None          # value of vmware_soap_session
        self.conn = None

    def _conn(self):
        if self.conn is None:
            if self.https:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=ssl._create_unverified_context(), timeout=120)
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        return self.conn

    def post(self, body, send_cookie=True):
        data = (ENV_HEAD + body + ENV_TAIL).encode()
        hdr = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": SOAP_ACTION}
        if send_cookie and self.cookie:
            hdr["Cookie"] = "vmware_soap_session=" + self.cookie
        for attempt in (1, 2):
            try:
                c = self._conn()
                c.request("POST", self.path, data, hdr)
                r = c.getresponse()
                text = r.read().decode()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn = None
                if attempt == 2:
                    raise
        for k, v in r.getheaders():
            if k.lower() == "set-cookie" and v.startswith("vmware_soap_session="):
                self.cookie = v.split(";", 1)[0].split("=", 1)[1].strip('"')
        return r.status, r.getheaders(), data.decode(), text


def normalize(text):
    """vcsim 0.24.2 writes nested xsi:type as XMLSchema-instance:type with an inline xmlns; fold it back for regex checks."""
    return re.sub(r' xmlns:XMLSchema-instance="[^"]*"', "", text).replace("XMLSchema-instance:type=", "xsi:type=")


def root_of(text):
    return ET.fromstring(text.encode())


def returnval(text):
    return root_of(text).findall(".//v:returnval", NS)


def moref(el):
    return (el.get("type"), el.text)


def objects(text):
    """RetrievePropertiesEx/ContinueRetrievePropertiesEx -> (token, [ {'_obj':(type,id), prop: Element} ])"""
    out, token = [], None
    for rv in returnval(text):
        t = rv.find("v:token", NS)
        if t is not None:
            token = t.text
        for oc in rv.findall("v:objects", NS):
            d = {"_obj": moref(oc.find("v:obj", NS))}
            for ps in oc.findall("v:propSet", NS):
                d[ps.find("v:name", NS).text] = ps.find("v:val", NS)
            out.append(d)
    return token, out


def fault_type(text):
    d = root_of(text).find(".//s:Fault/detail/*", NS)
    if d is None:
        d = root_of(text).find(".//detail/*")
    return None if d is None else (d.get(XSI_TYPE) or d.tag.split("}")[-1])


# ---------------------------------------------------------------- request builders
def mo(tag, typ, val):
    return '<%s type="%s">%s</%s>' % (tag, typ, val, tag)


def view_traversal_spec(view, props_by_type, max_objects=None):
    """PropertyFilterSpec over a ContainerView: propSet(s) first, then objectSet (schema order)."""
    ps = "".join('<propSet><type>%s</type>%s</propSet>' % (t, "".join("<pathSet>%s</pathSet>" % p for p in paths))
                 for t, paths in props_by_type)
    return ('<specSet>%s<objectSet>%s<skip>true</skip>'
            '<selectSet xsi:type="TraversalSpec"><name>traverseEntities</name><type>ContainerView</type>'
            '<path>view</path><skip>false</skip></selectSet></objectSet></specSet>' % (ps, mo("obj", "ContainerView", view)))


def rpex(pc, spec, max_objects=None):
    opt = "<options>%s</options>" % ("<maxObjects>%d</maxObjects>" % max_objects if max_objects else "")
    return '<RetrievePropertiesEx xmlns="urn:vim25">%s%s%s</RetrievePropertiesEx>' % (mo("_this", "PropertyCollector", pc), spec, opt)


def obj_props(pc, typ, ids, paths):
    """RetrievePropertiesEx for explicit objects (no traversal)."""
    ps = '<propSet><type>%s</type>%s</propSet>' % (typ, "".join("<pathSet>%s</pathSet>" % p for p in paths))
    os_ = "".join("<objectSet>%s<skip>false</skip></objectSet>" % mo("obj", typ, i) for i in ids)
    return rpex(pc, "<specSet>%s%s</specSet>" % (ps, os_))


VM_PROPS = ["name", "parent", "config.uuid", "config.instanceUuid", "config.hardware.numCPU",
            "config.hardware.memoryMB", "runtime.powerState", "runtime.host", "guest.ipAddress",
            "guest.hostName", "guest.toolsRunningStatus", "summary.config.template", "datastore",
            "network", "resourcePool"]
HOST_PROPS = ["name", "parent", "summary.hardware.vendor", "summary.hardware.model", "summary.hardware.uuid",
              "summary.hardware.cpuModel", "summary.hardware.numCpuPkgs", "summary.hardware.numCpuCores",
              "summary.hardware.numCpuThreads", "summary.hardware.cpuMhz", "summary.hardware.memorySize",
              "summary.quickStats.overallCpuUsage", "summary.quickStats.overallMemoryUsage",
              "summary.config.product.fullName", "runtime.connectionState", "runtime.powerState",
              "runtime.inMaintenanceMode", "datastore", "network", "vm"]
CLUSTER_PROPS = ["name", "parent", "summary", "host", "datastore", "network", "resourcePool"]
DC_PROPS = ["name", "parent", "vmFolder", "hostFolder", "datastoreFolder", "networkFolder"]
DS_PROPS = ["name", "summary.capacity", "summary.freeSpace", "summary.uncommitted", "summary.type",
            "summary.url", "summary.accessible", "host", "vm"]
NET_PROPS = ["name", "summary.accessible", "host", "vm"]
DVPG_PROPS = ["name", "key", "config.distributedVirtualSwitch", "config.defaultPortConfig", "host", "vm"]
TASK_PROPS = ["info.state", "info.progress", "info.error", "info.result", "info.descriptionId",
              "info.entity", "info.entityName", "info.queueTime", "info.startTime", "info.completeTime"]


class Run:
    def __init__(self, url, write_dir=None):
        self.s = Soap(url)
        self.url = url
        self.write_dir = write_dir
        self.n = 0
        self.failures = []
        self.checks = 0

    def check(self, cond, what):
        self.checks += 1
        if not cond:
            self.failures.append("%02d %s" % (self.n, what))
            print("   FAIL: " + what)
        return cond

    def call(self, name, desc, body, expect=(), send_cookie=True, status=200, fault=None, save=True):
        """Send body, check HTTP status, fault type and regexes; save NN-name.xml."""
        if save:
            self.n += 1
        st, hdrs, req, text = self.s.post(body, send_cookie)
        print("%02d %-34s HTTP %d %s" % (self.n, name, st, ("fault=" + str(fault_type(text))) if st == 500 else ""))
        self.check(status is None or st == status, "%s: HTTP %d != %d" % (name, st, status))
        if fault:
            self.check(fault_type(text) == fault, "%s: fault %s != %s" % (name, fault_type(text), fault))
        norm = normalize(text)
        for rx in expect:
            self.check(re.search(rx, norm, re.S) is not None, "%s: /%s/ not in response" % (name, rx))
        if save and self.write_dir:
            self.save(name, desc, req, st, hdrs, text, send_cookie)
        return text

    def save(self, name, desc, req, st, hdrs, text, send_cookie):
        ab = abridge(text)
        hl = [("%s: %s" % (k, v)) for k, v in hdrs if k.lower() in ("set-cookie", "content-type")]
        with open(os.path.join(self.write_dir, "%02d-%s.xml" % (self.n, name)), "w") as f:
            f.write("<!--\n  %02d %s\n  %s\n" % (self.n, name, desc.replace("--", "- -")))
            f.write("  POST %s  Content-Type: text/xml; charset=utf-8  SOAPAction: %s%s\n-->\n" % (
                self.s.path, SOAP_ACTION, "  Cookie: vmware_soap_session=<session>" if send_cookie and self.s.cookie else ""))
            f.write("<!-- ===== REQUEST ===== -->\n" + req)
            f.write("<!-- ===== RESPONSE: HTTP %d %s (abridged; verified by vsoap.py) ===== -->\n" % (st, " | ".join(hl).replace("--", "- -")))
            f.write(ab + "\n")

    # ------------------------------------------------------------------------------------------
    def main(self):
        s = self.s
        # 1. ServiceContent (no session needed)
        t = self.call("RetrieveServiceContent", "ServiceInstance.RetrieveServiceContent: no session required; "
                      "gives the MoRefs of every manager.",
                      '<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>',
                      expect=[r'<rootFolder type="Folder">', r'<propertyCollector type="PropertyCollector">',
                              r'<viewManager type="ViewManager">', r'<sessionManager type="SessionManager">',
                              r'<apiVersion>[0-9.]+</apiVersion>', r'<apiType>VirtualCenter</apiType>'])
        rv = returnval(t)[0]
        sc = {c.tag.split("}")[1]: c.text for c in rv}
        pc, vm_mgr, sm, root = sc["propertyCollector"], sc["viewManager"], sc["sessionManager"], sc["rootFolder"]
        cust_mgr = sc.get("customizationSpecManager")

        # 2. faults before login
        self.call("NotAuthenticated", "Any call other than RetrieveServiceContent/Login/RetrieveProperties(Ex) without a session cookie -> NotAuthenticated fault.",
                  '<CreateContainerView xmlns="urn:vim25">%s%s<type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>' % (mo("_this", "ViewManager", vm_mgr), mo("container", "Folder", root)),
                  send_cookie=False, status=500, fault="NotAuthenticated",
                  expect=[r"<faultcode>ServerFaultCode</faultcode>", r'xsi:type="NotAuthenticated"', r"<privilegeId>System.View</privilegeId>"])
        self.call("Login-InvalidLogin", "SessionManager.Login with an empty password -> InvalidLogin fault (vcsim accepts any non-empty user/password unless started with fixed credentials).",
                  '<Login xmlns="urn:vim25">%s<userName>%s</userName><password></password></Login>' % (mo("_this", "SessionManager", sm), s.user),
                  send_cookie=False, status=500, fault="InvalidLogin", expect=[r'xsi:type="InvalidLogin"'])
        # 3. Login
        s.cookie = None
        t = self.call("Login", "SessionManager.Login: answer sets cookie vmware_soap_session=\"...\"; send it back as Cookie on every later request.",
                      '<Login xmlns="urn:vim25">%s<userName>%s</userName><password>%s</password></Login>' % (mo("_this", "SessionManager", sm), s.user, s.password),
                      expect=[r"<LoginResponse", r"<key>[^<]+</key>", r"<userName>%s</userName>" % re.escape(s.user), r"<loginTime>"])
        self.check(s.cookie is not None, "Login: no Set-Cookie vmware_soap_session")
        self.call("Login-again", "Login on a session that is already logged in -> InvalidLogin in vcsim (real vCenter: also a fault; log out first).",
                  '<Login xmlns="urn:vim25">%s<userName>%s</userName><password>%s</password></Login>' % (mo("_this", "SessionManager", sm), s.user, s.password),
                  status=500, fault="InvalidLogin")
        self.call("SessionIsActive-currentSession", "Read SessionManager.currentSession to check a session is alive (cheap keep-alive).",
                  rpex(pc, '<specSet><propSet><type>SessionManager</type><pathSet>currentSession</pathSet></propSet><objectSet>%s</objectSet></specSet>' % mo("obj", "SessionManager", sm)),
                  expect=[r"<name>currentSession</name>", r'xsi:type="UserSession"', r"<userName>"])

        # 4. inventory views
        views = {}
        for typ in ["VirtualMachine", "HostSystem", "ClusterComputeResource", "Datacenter", "Datastore", "Network", "DistributedVirtualPortgroup"]:
            t = self.call("CreateContainerView-" + typ, "ViewManager.CreateContainerView(container=rootFolder, type=[%s], recursive=true) -> ContainerView MoRef (session-scoped)." % typ,
                          '<CreateContainerView xmlns="urn:vim25">%s%s<type>%s</type><recursive>true</recursive></CreateContainerView>' % (mo("_this", "ViewManager", vm_mgr), mo("container", "Folder", root), typ),
                          expect=[r'<returnval type="ContainerView">[^<]+</returnval>'], save=(typ in ("VirtualMachine",)))
            views[typ] = returnval(t)[0].text

        # VMs, paged
        t = self.call("RetrievePropertiesEx-VM-page1", "PropertyCollector.RetrievePropertiesEx over the VM view with maxObjects=3: first page + token.",
                      rpex(pc, view_traversal_spec(views["VirtualMachine"], [("VirtualMachine", VM_PROPS)]), 3),
                      expect=[r'<obj type="VirtualMachine">vm-\d+</obj>', r"<name>config.hardware.numCPU</name><val xsi:type=\"xsd:int\">",
                              r"<name>runtime.powerState</name><val xsi:type=\"VirtualMachinePowerState\">", r'<name>datastore</name><val xsi:type="ArrayOfManagedObjectReference"><ManagedObjectReference type="Datastore">',
                              r"<name>summary.config.template</name><val xsi:type=\"xsd:boolean\">"])
        token, vms = objects(t)
        if token is None:
            # vcsim 0.24.2 ignores options.maxObjects: everything comes back in one page, no token.
            self.check(len(vms) >= 4, "need >= 4 VMs, got %d" % len(vms))
            self.call("ContinueRetrievePropertiesEx", "PropertyCollector.ContinueRetrievePropertiesEx(token): next page (real vCenter; last page has no <token>). "
                      "vcsim 0.24.2 never pages and does not implement it -> MethodNotFound.",
                      '<ContinueRetrievePropertiesEx xmlns="urn:vim25">%s<token>1</token></ContinueRetrievePropertiesEx>' % mo("_this", "PropertyCollector", pc),
                      status=500, fault="MethodNotFound", expect=[r"<method>ContinueRetrievePropertiesEx</method>"])
            self.call("CancelRetrievePropertiesEx", "PropertyCollector.CancelRetrievePropertiesEx(token): abandon a paged result (real vCenter). vcsim 0.24.2 -> MethodNotFound.",
                      '<CancelRetrievePropertiesEx xmlns="urn:vim25">%s<token>1</token></CancelRetrievePropertiesEx>' % mo("_this", "PropertyCollector", pc),
                      status=500, fault="MethodNotFound")
        else:
            self.check(len(vms) == 3, "page1: %d objects != 3" % len(vms))
            first_cont = True
            while token:
                t = self.call("ContinueRetrievePropertiesEx", "PropertyCollector.ContinueRetrievePropertiesEx(token): next page; last page has no <token>.",
                              '<ContinueRetrievePropertiesEx xmlns="urn:vim25">%s<token>%s</token></ContinueRetrievePropertiesEx>' % (mo("_this", "PropertyCollector", pc), token),
                              expect=[r"<ContinueRetrievePropertiesExResponse", r'<obj type="VirtualMachine">'], save=first_cont)
                first_cont = False
                token, more = objects(t)
                vms += more

        t = self.call("RetrievePropertiesEx-HostSystem", "Hosts: hardware summary, quick stats, state.",
                      rpex(pc, view_traversal_spec(views["HostSystem"], [("HostSystem", HOST_PROPS)]), 1000),
                      expect=[r'<obj type="HostSystem">host-\d+</obj>', r'<name>summary.hardware.memorySize</name><val xsi:type="xsd:long">\d+',
                              r'<name>summary.hardware.numCpuCores</name><val xsi:type="xsd:short">\d+', r'<name>runtime.connectionState</name><val xsi:type="HostSystemConnectionState">connected'])
        _, hosts = objects(t)
        t = self.call("RetrievePropertiesEx-Cluster", "Clusters: whole ClusterComputeResourceSummary (xsi:type on val!).",
                      rpex(pc, view_traversal_spec(views["ClusterComputeResource"], [("ClusterComputeResource", CLUSTER_PROPS)]), 1000),
                      expect=[r'<obj type="ClusterComputeResource">', r'<name>summary</name><val xsi:type="ClusterComputeResourceSummary"><totalCpu>\d+</totalCpu><totalMemory>\d+</totalMemory>',
                              r"<numHosts>\d+</numHosts>", r'<name>resourcePool</name><val xsi:type="ManagedObjectReference" type="ResourcePool">'])
        _, clusters = objects(t)
        t = self.call("RetrievePropertiesEx-Datacenter", "Datacenters and their folders.",
                      rpex(pc, view_traversal_spec(views["Datacenter"], [("Datacenter", DC_PROPS)]), 1000),
                      expect=[r'<obj type="Datacenter">datacenter-\d+</obj>', r'<name>vmFolder</name><val xsi:type="ManagedObjectReference" type="Folder">'])
        _, dcs = objects(t)
        t = self.call("RetrievePropertiesEx-Datastore", "Datastores: capacity/freeSpace in bytes, type, url.",
                      rpex(pc, view_traversal_spec(views["Datastore"], [("Datastore", DS_PROPS)]), 1000),
                      expect=[r'<obj type="Datastore">[^<]+</obj>', r'<name>summary.capacity</name><val xsi:type="xsd:long">\d+',
                              r'<name>summary.freeSpace</name><val xsi:type="xsd:long">\d+', r'<name>summary.type</name><val xsi:type="xsd:string">[A-Za-z]+'])
        _, dss = objects(t)
        t = self.call("RetrievePropertiesEx-Network", "Network view returns Network AND DistributedVirtualPortgroup objects; one propSet per concrete type.",
                      rpex(pc, view_traversal_spec(views["Network"], [("Network", NET_PROPS), ("DistributedVirtualPortgroup", DVPG_PROPS)]), 1000),
                      expect=[r'<obj type="Network">network-\d+</obj>', r'<obj type="DistributedVirtualPortgroup">dvportgroup-\d+</obj>',
                              r'<name>config.distributedVirtualSwitch</name><val xsi:type="ManagedObjectReference" type="(Vmware)?DistributedVirtualSwitch">'])
        _, nets = objects(t)
        dvs_ref = [moref(n["config.distributedVirtualSwitch"]) for n in nets if "config.distributedVirtualSwitch" in n][0]
        t = self.call("RetrievePropertiesEx-DVSwitch-uuid", "DVS uuid (needed for a DVS port backing).",
                      obj_props(pc, dvs_ref[0], [dvs_ref[1]], ["name", "uuid"]),
                      expect=[r'<name>uuid</name><val xsi:type="xsd:string">[^<]+'])
        _, dvs = objects(t)
        for typ, v in views.items():
            self.call("DestroyView", "ContainerView.DestroyView: free the view when done (views live until logout).",
                      '<DestroyView xmlns="urn:vim25">%s</DestroyView>' % mo("_this", "ContainerView", v),
                      expect=[r"<DestroyViewResponse"], save=(typ == "VirtualMachine"))

        # pick objects
        plain = [v for v in vms if v.get("summary.config.template") is None or v["summary.config.template"].text != "true"]
        A, T = plain[0], plain[1]
        a, tmpl = A["_obj"][1], T["_obj"][1]
        std_net = [n for n in nets if n["_obj"][0] == "Network"][0]
        dvpg = [n for n in nets if n["_obj"][0] == "DistributedVirtualPortgroup" and "config.defaultPortConfig" in n
                and "uplink" not in n["name"].text.lower()][0]
        dvs_uuid = dvs[0]["uuid"].text
        print("   using VM %s (%s), template-to-be %s, network %s, dvpg %s" % (a, A["name"].text, tmpl, std_net["_obj"][1], dvpg["_obj"][1]))

        # 5. power + task tracking
        def state_of(vm):
            _, o = objects(s.post(obj_props(pc, "VirtualMachine", [vm], ["runtime.powerState"]))[3])
            return o[0]["runtime.powerState"].text

        def task_info(task):
            _, o = objects(s.post(obj_props(pc, "Task", [task], TASK_PROPS))[3])
            return o[0]

        def wait_task(task, timeout=60):
            end = time.time() + timeout
            while True:
                i = task_info(task)
                if i["info.state"].text in ("success", "error") or time.time() > end:
                    return i
                time.sleep(0.2)

        if state_of(a) != "poweredOn":
            wait_task(returnval(s.post('<PowerOnVM_Task xmlns="urn:vim25">%s</PowerOnVM_Task>' % mo("_this", "VirtualMachine", a))[3])[0].text)

        t = self.call("PowerOffVM_Task", "VirtualMachine.PowerOffVM_Task -> Task MoRef (hard power off).",
                      '<PowerOffVM_Task xmlns="urn:vim25">%s</PowerOffVM_Task>' % mo("_this", "VirtualMachine", a),
                      expect=[r'<returnval type="Task">task-\d+</returnval>'])
        task = returnval(t)[0].text
        t = self.call("TaskInfo-RetrievePropertiesEx", "Poll a task: RetrievePropertiesEx on the Task with info.* paths until info.state is success|error.",
                      obj_props(pc, "Task", [task], TASK_PROPS),
                      expect=[r'<name>info.state</name><val xsi:type="TaskInfoState">(success|running|queued)</val>', r'<name>info.descriptionId</name><val xsi:type="xsd:string">VirtualMachine.powerOff</val>',
                              r'<name>info.entity</name><val xsi:type="ManagedObjectReference" type="VirtualMachine">%s</val>' % a])
        self.check(wait_task(task)["info.state"].text == "success", "powerOff task did not succeed")
        self.check(state_of(a) == "poweredOff", "VM not poweredOff after PowerOffVM_Task")

        t = self.call("PowerOffVM_Task-already-off", "PowerOffVM_Task on a powered-off VM: the call itself succeeds and returns a Task; the Task ends in state error with InvalidPowerState.",
                      '<PowerOffVM_Task xmlns="urn:vim25">%s</PowerOffVM_Task>' % mo("_this", "VirtualMachine", a), expect=[r'<returnval type="Task">'])
        task = returnval(t)[0].text
        wait_task(task)
        self.call("TaskInfo-error-InvalidPowerState", "Task in error: info.error is a LocalizedMethodFault {fault xsi:type=..., localizedMessage}.",
                  obj_props(pc, "Task", [task], TASK_PROPS),
                  expect=[r'<name>info.state</name><val xsi:type="TaskInfoState">error</val>', r'<name>info.error</name><val xsi:type="LocalizedMethodFault"><fault xsi:type="InvalidPowerState">',
                          r"<requestedState>poweredOff</requestedState><existingState>poweredOff</existingState>", r"<localizedMessage>[^<]*</localizedMessage>"])

        t = self.call("PowerOnVM_Task", "VirtualMachine.PowerOnVM_Task (optional <host>) -> Task.",
                      '<PowerOnVM_Task xmlns="urn:vim25">%s</PowerOnVM_Task>' % mo("_this", "VirtualMachine", a), expect=[r'<returnval type="Task">task-\d+</returnval>'])
        task = returnval(t)[0].text
        # WaitForUpdatesEx on this task
        t = self.call("CreateFilter-Task", "PropertyCollector.CreateFilter on a Task (for WaitForUpdatesEx) -> PropertyFilter MoRef.",
                      '<CreateFilter xmlns="urn:vim25">%s<spec><propSet><type>Task</type><pathSet>info.state</pathSet><pathSet>info.progress</pathSet><pathSet>info.error</pathSet><pathSet>info.result</pathSet></propSet><objectSet>%s<skip>false</skip></objectSet></spec><partialUpdates>false</partialUpdates></CreateFilter>' % (mo("_this", "PropertyCollector", pc), mo("obj", "Task", task)),
                      expect=[r'<returnval type="PropertyFilter">[^<]+</returnval>'])
        filt = returnval(t)[0].text
        t = self.call("WaitForUpdatesEx", "PropertyCollector.WaitForUpdatesEx(version='' first, then the returned <version>) with maxWaitSeconds; answer is an UpdateSet (empty body = timeout, no changes).",
                      '<WaitForUpdatesEx xmlns="urn:vim25">%s<version></version><options><maxWaitSeconds>10</maxWaitSeconds></options></WaitForUpdatesEx>' % mo("_this", "PropertyCollector", pc),
                      expect=[r"<version>[^<]+</version>", r'<filter type="PropertyFilter">%s</filter>' % re.escape(filt), r"<kind>enter</kind>",
                              r'<name>info.state</name><op>assign</op><val xsi:type="TaskInfoState">(success|running|queued)</val>'])
        ver = root_of(t).find(".//v:returnval/v:version", NS).text
        t = self.call("WaitForUpdatesEx-timeout", "Second WaitForUpdatesEx with the previous version and maxWaitSeconds=1 when nothing changed: empty response (no returnval).",
                      '<WaitForUpdatesEx xmlns="urn:vim25">%s<version>%s</version><options><maxWaitSeconds>1</maxWaitSeconds></options></WaitForUpdatesEx>' % (mo("_this", "PropertyCollector", pc), ver),
                      expect=[r"<WaitForUpdatesExResponse( [^>]*)?>\s*</WaitForUpdatesExResponse>|<WaitForUpdatesExResponse[^>]*/>"])
        self.call("DestroyPropertyFilter", "PropertyFilter.DestroyPropertyFilter when done.",
                  '<DestroyPropertyFilter xmlns="urn:vim25">%s</DestroyPropertyFilter>' % mo("_this", "PropertyFilter", filt), expect=[r"<DestroyPropertyFilterResponse"])
        self.check(wait_task(task)["info.state"].text == "success", "powerOn task did not succeed")

        t = self.call("PowerOnVM_Task-already-on", "PowerOnVM_Task on a running VM -> Task ends in error InvalidPowerState(requested poweredOn, existing poweredOn).",
                      '<PowerOnVM_Task xmlns="urn:vim25">%s</PowerOnVM_Task>' % mo("_this", "VirtualMachine", a), expect=[r'<returnval type="Task">'])
        i = wait_task(returnval(t)[0].text)
        self.check(i["info.state"].text == "error" and i["info.error"].find("v:fault", NS).get(XSI_TYPE) == "InvalidPowerState", "power on running VM: task not error/InvalidPowerState")

        t = self.call("ResetVM_Task", "VirtualMachine.ResetVM_Task (hard reset) -> Task; VM stays poweredOn.",
                      '<ResetVM_Task xmlns="urn:vim25">%s</ResetVM_Task>' % mo("_this", "VirtualMachine", a), expect=[r'<returnval type="Task">task-\d+</returnval>'])
        self.check(wait_task(returnval(t)[0].text)["info.state"].text == "success", "reset task failed")
        self.check(state_of(a) == "poweredOn", "not poweredOn after reset")

        t = self.call("RebootGuest", "VirtualMachine.RebootGuest: synchronous, empty response, needs VMware Tools. vcsim 0.24.2 does NOT implement it -> MethodNotFound fault; newer vcsim/real vCenter return <RebootGuestResponse/>.",
                      '<RebootGuest xmlns="urn:vim25">%s</RebootGuest>' % mo("_this", "VirtualMachine", a), status=None or 500, fault="MethodNotFound",
                      expect=[r"does not implement: RebootGuest", r"<method>RebootGuest</method>"]) if True else None

        self.call("ShutdownGuest", "VirtualMachine.ShutdownGuest: synchronous, empty response; request only (guest shuts down later). vcsim powers off immediately.",
                  '<ShutdownGuest xmlns="urn:vim25">%s</ShutdownGuest>' % mo("_this", "VirtualMachine", a), expect=[r"<ShutdownGuestResponse"])
        self.check(state_of(a) == "poweredOff", "not poweredOff after ShutdownGuest (vcsim)")
        self.call("ShutdownGuest-already-off", "ShutdownGuest on a powered-off VM -> SOAP fault InvalidPowerState (synchronous methods fault directly, no Task).",
                  '<ShutdownGuest xmlns="urn:vim25">%s</ShutdownGuest>' % mo("_this", "VirtualMachine", a), status=500, fault="InvalidPowerState",
                  expect=[r"<requestedState>poweredOn</requestedState>", r"<existingState>poweredOff</existingState>"])

        # 6. reconfigure
        t = self.call("ReconfigVM_Task-cpu-mem", "VirtualMachine.ReconfigVM_Task with numCPUs and memoryMB (schema order: numCPUs before memoryMB).",
                      '<ReconfigVM_Task xmlns="urn:vim25">%s<spec><numCPUs>4</numCPUs><memoryMB>2048</memoryMB></spec></ReconfigVM_Task>' % mo("_this", "VirtualMachine", a),
                      expect=[r'<returnval type="Task">task-\d+</returnval>'])
        self.check(wait_task(returnval(t)[0].text)["info.state"].text == "success", "reconfig cpu/mem failed")
        t = self.call("RetrievePropertiesEx-VM-hardware", "Read back config.hardware (numCPU, memoryMB, devices) to find controller keys, used unit numbers and NIC keys.",
                      obj_props(pc, "VirtualMachine", [a], ["config.hardware.numCPU", "config.hardware.memoryMB", "config.hardware.device"]),
                      expect=[r'<name>config.hardware.numCPU</name><val xsi:type="xsd:int">4</val>', r'<name>config.hardware.memoryMB</name><val xsi:type="xsd:int">2048</val>',
                              r'<VirtualDevice xsi:type="(VirtualLsiLogicController|ParaVirtualSCSIController|VirtualLsiLogicSASController|VirtualBusLogicController)">',
                              r'<VirtualDevice xsi:type="VirtualE1000">'])
        devs = objects(t)[1][0]["config.hardware.device"].findall("v:VirtualDevice", NS)
        scsi = [d for d in devs if d.get(XSI_TYPE) in ("ParaVirtualSCSIController", "VirtualLsiLogicController", "VirtualLsiLogicSASController", "VirtualBusLogicController")][0]
        skey = scsi.findtext("v:key", None, NS)
        used = {int(d.findtext("v:unitNumber", "-1", NS)) for d in devs if d.findtext("v:controllerKey", None, NS) == skey}
        unit = min(u for u in range(16) if u not in used and u != 7)
        ndisks = sum(1 for d in devs if d.get(XSI_TYPE) == "VirtualDisk")
        nic = [d for d in devs if d.get(XSI_TYPE) in ("VirtualE1000", "VirtualE1000e", "VirtualVmxnet3", "VirtualPCNet32", "VirtualVmxnet2")][0]
        nic_t, nic_key, mac = nic.get(XSI_TYPE), nic.findtext("v:key", None, NS), nic.findtext("v:macAddress", "", NS)
        nic_label, nic_sum = nic.findtext("v:deviceInfo/v:label", "", NS), nic.findtext("v:deviceInfo/v:summary", "", NS)
        nic_ck, nic_un = nic.findtext("v:controllerKey", "", NS), nic.findtext("v:unitNumber", "", NS)
        print("   scsi key %s, free unit %d, nic %s key %s mac %s" % (skey, unit, nic_t, nic_key, mac))

        t = self.call("ReconfigVM_Task-add-disk", "Add a 1 GiB thin disk: deviceChange operation=add, fileOperation=create, negative temporary key, controllerKey+unitNumber, backing fileName empty (= VM folder on the VM's datastore).",
                      '<ReconfigVM_Task xmlns="urn:vim25">%s<spec><deviceChange><operation>add</operation><fileOperation>create</fileOperation>'
                      '<device xsi:type="VirtualDisk"><key>-101</key><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName></fileName><diskMode>persistent</diskMode><thinProvisioned>true</thinProvisioned></backing>'
                      '<controllerKey>%s</controllerKey><unitNumber>%d</unitNumber><capacityInKB>1048576</capacityInKB></device></deviceChange></spec></ReconfigVM_Task>' % (mo("_this", "VirtualMachine", a), skey, unit),
                      expect=[r'<returnval type="Task">'])
        self.check(wait_task(returnval(t)[0].text)["info.state"].text == "success", "add disk failed")
        t = s.post(obj_props(pc, "VirtualMachine", [a], ["config.hardware.device"]))[3]
        devs = objects(t)[1][0]["config.hardware.device"].findall("v:VirtualDevice", NS)
        newd = [d for d in devs if d.get(XSI_TYPE) == "VirtualDisk" and d.findtext("v:unitNumber", "", NS) == str(unit) and d.findtext("v:controllerKey", "", NS) == skey]
        self.check(len(newd) == 1 and newd[0].findtext("v:capacityInKB", "", NS) == "1048576", "new disk not found with capacity 1048576 KB")
        if newd:
            print("   new disk key %s file %s" % (newd[0].findtext("v:key", "", NS), newd[0].findtext("v:backing/v:fileName", "", NS)))

        t = self.call("ReconfigVM_Task-nic-to-dvportgroup", "Edit NIC: operation=edit, device with its real xsi:type, key and deviceInfo (vcsim 0.24.2 fails with InvalidDeviceSpec AND drops the NIC if deviceInfo is missing), backing VirtualEthernetCardDistributedVirtualPortBackingInfo{port{switchUuid, portgroupKey}}. Send the rest of the device as read (addressType, macAddress...).",
                      '<ReconfigVM_Task xmlns="urn:vim25">%s<spec><deviceChange><operation>edit</operation><device xsi:type="%s"><key>%s</key><deviceInfo><label>%s</label><summary>%s</summary></deviceInfo>'
                      '<backing xsi:type="VirtualEthernetCardDistributedVirtualPortBackingInfo"><port><switchUuid>%s</switchUuid><portgroupKey>%s</portgroupKey></port></backing>'
                      '<connectable><startConnected>true</startConnected><allowGuestControl>true</allowGuestControl><connected>false</connected></connectable>'
                      '<controllerKey>%s</controllerKey><unitNumber>%s</unitNumber><addressType>generated</addressType><macAddress>%s</macAddress></device></deviceChange></spec></ReconfigVM_Task>' % (mo("_this", "VirtualMachine", a), nic_t, nic_key, nic_label, nic_sum, dvs_uuid, dvpg["key"].text, nic_ck, nic_un, mac),
                      expect=[r'<returnval type="Task">'])
        self.check(wait_task(returnval(t)[0].text)["info.state"].text == "success", "nic->dvpg failed")
        t = self.call("RetrievePropertiesEx-VM-network", "VM.network now lists the port group.",
                      obj_props(pc, "VirtualMachine", [a], ["network", "config.hardware.device"]),
                      expect=[r'<ManagedObjectReference type="DistributedVirtualPortgroup">%s</ManagedObjectReference>' % dvpg["_obj"][1],
                              r'<backing xsi:type="VirtualEthernetCardDistributedVirtualPortBackingInfo"><port><switchUuid>%s</switchUuid><portgroupKey>%s</portgroupKey>' % (re.escape(dvs_uuid), dvpg["key"].text)])
        t = self.call("ReconfigVM_Task-nic-to-network", "Edit NIC back to a standard port group: backing VirtualEthernetCardNetworkBackingInfo{deviceName=<network name>, network=<Network MoRef>}.",
                      '<ReconfigVM_Task xmlns="urn:vim25">%s<spec><deviceChange><operation>edit</operation><device xsi:type="%s"><key>%s</key><deviceInfo><label>%s</label><summary>%s</summary></deviceInfo>'
                      '<backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>%s</deviceName><network type="Network">%s</network></backing>'
                      '<connectable><startConnected>true</startConnected><allowGuestControl>true</allowGuestControl><connected>false</connected></connectable>'
                      '<controllerKey>%s</controllerKey><unitNumber>%s</unitNumber><addressType>generated</addressType><macAddress>%s</macAddress></device></deviceChange></spec></ReconfigVM_Task>' % (mo("_this", "VirtualMachine", a), nic_t, nic_key, nic_label, nic_sum, std_net["name"].text, std_net["_obj"][1], nic_ck, nic_un, mac),
                      expect=[r'<returnval type="Task">'])
        self.check(wait_task(returnval(t)[0].text)["info.state"].text == "success", "nic->network failed")
        t = s.post(obj_props(pc, "VirtualMachine", [a], ["network"]))[3]
        self.check('<ManagedObjectReference type="Network">%s</ManagedObjectReference>' % std_net["_obj"][1] in t, "VM.network does not show the standard network after edit")

        # 7. rename
        newname = A["name"].text + "-renamed"
        t = self.call("Rename_Task", "ManagedEntity.Rename_Task(newName) -> Task (works on any entity: VM, folder, host...).",
                      '<Rename_Task xmlns="urn:vim25">%s<newName>%s</newName></Rename_Task>' % (mo("_this", "VirtualMachine", a), newname), expect=[r'<returnval type="Task">'])
        self.check(wait_task(returnval(t)[0].text)["info.state"].text == "success", "rename failed")
        _, o = objects(s.post(obj_props(pc, "VirtualMachine", [a], ["name"]))[3])
        self.check(o[0]["name"].text == newname, "name not changed")

        # 8. template + clone
        if state_of(tmpl) != "poweredOff":
            wait_task(returnval(s.post('<PowerOffVM_Task xmlns="urn:vim25">%s</PowerOffVM_Task>' % mo("_this", "VirtualMachine", tmpl))[3])[0].text)
        self.call("MarkAsTemplate", "VirtualMachine.MarkAsTemplate: synchronous; VM must be powered off (else InvalidPowerState).",
                  '<MarkAsTemplate xmlns="urn:vim25">%s</MarkAsTemplate>' % mo("_this", "VirtualMachine", tmpl), expect=[r"<MarkAsTemplateResponse"])
        self.call("PowerOnVM_Task-template", "PowerOnVM_Task on a template -> SOAP fault (vcsim: InvalidState; vCenter: InvalidState/NotSupported).",
                  '<PowerOnVM_Task xmlns="urn:vim25">%s</PowerOnVM_Task>' % mo("_this", "VirtualMachine", tmpl), status=500, fault="InvalidState")
        _, o = objects(s.post(obj_props(pc, "VirtualMachine", [tmpl], ["parent", "runtime.host", "datastore", "summary.config.template"]))[3])
        folder, host, ds = o[0]["parent"].text, o[0]["runtime.host"].text, o[0]["datastore"][0].text
        pool = None
        for c in clusters:
            if host in [h.text for h in c["host"]]:
                pool = c["resourcePool"].text
        if pool is None:  # standalone host: its ComputeResource's pool
            _, hp = objects(s.post(obj_props(pc, "HostSystem", [host], ["parent"]))[3])
            _, cr = objects(s.post(obj_props(pc, "ComputeResource", [hp[0]["parent"].text], ["resourcePool"]))[3])
            pool = cr[0]["resourcePool"].text
        self.check(o[0]["summary.config.template"].text == "true", "template flag not set")
        clone = "clone-%d" % int(time.time())
        cspec = ('<customization><identity xsi:type="CustomizationLinuxPrep"><hostName xsi:type="CustomizationFixedName"><name>web01</name></hostName><domain>example.com</domain></identity>'
                 '<globalIPSettings><dnsServerList>10.0.0.2</dnsServerList></globalIPSettings>'
                 '<nicSettingMap><adapter><ip xsi:type="CustomizationFixedIp"><ipAddress>10.0.0.50</ipAddress></ip><subnetMask>255.255.255.0</subnetMask><gateway>10.0.0.1</gateway></adapter></nicSettingMap></customization>')
        t = self.call("CloneVM_Task", "VirtualMachine.CloneVM_Task from a template: folder, name, spec{location{datastore,pool,host}, template=false, customization, powerOn=true}. Pool is REQUIRED when the source is a template.",
                      '<CloneVM_Task xmlns="urn:vim25">%s%s<name>%s</name><spec><location>%s%s%s</location><template>false</template>%s<powerOn>true</powerOn></spec></CloneVM_Task>' % (
                          mo("_this", "VirtualMachine", tmpl), mo("folder", "Folder", folder), clone, mo("datastore", "Datastore", ds), mo("pool", "ResourcePool", pool), mo("host", "HostSystem", host), cspec),
                      expect=[r'<returnval type="Task">task-\d+</returnval>'])
        ctask = returnval(t)[0].text
        wait_task(ctask)
        t = self.call("TaskInfo-clone-result", "Successful CloneVM_Task: info.result is the new VM's MoRef (xsi:type ManagedObjectReference).",
                      obj_props(pc, "Task", [ctask], TASK_PROPS),
                      expect=[r'<name>info.state</name><val xsi:type="TaskInfoState">success</val>', r'<name>info.result</name><val xsi:type="ManagedObjectReference" type="VirtualMachine">vm-\d+</val>'])
        newvm = objects(t)[1][0]["info.result"].text
        t = self.call("RetrievePropertiesEx-clone", "The clone as vcsim 0.24.2 leaves it: powerOn=true and customization are IGNORED by CloneVM_Task (poweredOff, no guest.hostName/ipAddress from the spec).",
                      obj_props(pc, "VirtualMachine", [newvm], ["name", "runtime.powerState", "guest.hostName", "guest.ipAddress", "summary.config.template", "resourcePool"]),
                      expect=[r'<name>name</name><val xsi:type="xsd:string">%s</val>' % clone, r'<name>summary.config.template</name><val xsi:type="xsd:boolean">false</val>'])
        _, o = objects(t)
        print("   clone: power=%s hostName=%s ip=%s" % (o[0]["runtime.powerState"].text, getattr(o[0].get("guest.hostName"), "text", None), getattr(o[0].get("guest.ipAddress"), "text", None)))
        self.check(o[0]["runtime.powerState"].text == "poweredOff", "vcsim 0.24.2 expected to ignore powerOn in CloneVM_Task (behaviour changed?)")
        # customization via CustomizeVM_Task + power on (what vcsim does implement)
        t = self.call("CustomizeVM_Task", "VirtualMachine.CustomizeVM_Task(spec): vcsim stores it and applies hostName/fixed IP to guest.* at the next power-on.",
                      '<CustomizeVM_Task xmlns="urn:vim25">%s<spec>%s</spec></CustomizeVM_Task>' % (mo("_this", "VirtualMachine", newvm), cspec[len("<customization>"):-len("</customization>")]),
                      expect=[r'<returnval type="Task">'])
        self.check(wait_task(returnval(t)[0].text)["info.state"].text == "success", "customize failed")
        wait_task(returnval(s.post('<PowerOnVM_Task xmlns="urn:vim25">%s</PowerOnVM_Task>' % mo("_this", "VirtualMachine", newvm))[3])[0].text)
        self.call("RetrievePropertiesEx-clone-customized", "After CustomizeVM_Task + PowerOnVM_Task vcsim reports guest.hostName=web01 and guest.ipAddress=10.0.0.50.",
                  obj_props(pc, "VirtualMachine", [newvm], ["runtime.powerState", "guest.hostName", "guest.ipAddress"]),
                  expect=[r"<val xsi:type=\"VirtualMachinePowerState\">poweredOn</val>", r'<name>guest.hostName</name><val xsi:type="xsd:string">web01</val>', r'<name>guest.ipAddress</name><val xsi:type="xsd:string">10.0.0.50</val>'])

        # 9. destroy
        t = self.call("Destroy_Task-poweredOn", "Destroy_Task on a powered-on VM -> Task error InvalidPowerState (power off first).",
                      '<Destroy_Task xmlns="urn:vim25">%s</Destroy_Task>' % mo("_this", "VirtualMachine", newvm), expect=[r'<returnval type="Task">'])
        i = wait_task(returnval(t)[0].text)
        self.check(i["info.state"].text == "error" and i["info.error"].find("v:fault", NS).get(XSI_TYPE) == "InvalidPowerState", "destroy powered-on VM: expected task error InvalidPowerState")
        wait_task(returnval(s.post('<PowerOffVM_Task xmlns="urn:vim25">%s</PowerOffVM_Task>' % mo("_this", "VirtualMachine", newvm))[3])[0].text)
        t = self.call("Destroy_Task", "ManagedEntity.Destroy_Task on a powered-off VM -> Task; deletes the VM and its files.",
                      '<Destroy_Task xmlns="urn:vim25">%s</Destroy_Task>' % mo("_this", "VirtualMachine", newvm), expect=[r'<returnval type="Task">task-\d+</returnval>'])
        self.check(wait_task(returnval(t)[0].text)["info.state"].text == "success", "destroy failed")

        # 10. faults
        self.call("ManagedObjectNotFound", "Any method on a MoRef that does not exist (e.g. deleted VM) -> ManagedObjectNotFound fault with <obj>.",
                  '<PowerOnVM_Task xmlns="urn:vim25">%s</PowerOnVM_Task>' % mo("_this", "VirtualMachine", newvm), status=500, fault="ManagedObjectNotFound",
                  expect=[r'<obj type="VirtualMachine">%s</obj>' % newvm, r"<faultstring>[^<]+</faultstring>"])
        t = self.call("RetrievePropertiesEx-missing-object", "RetrievePropertiesEx whose explicit objectSet names a deleted object -> ManagedObjectNotFound fault for the whole call (objects reached through a view simply disappear).",
                      obj_props(pc, "VirtualMachine", [newvm], ["name"]), status=500, fault="ManagedObjectNotFound", expect=[r'<obj type="VirtualMachine">%s</obj>' % newvm])
        t = self.call("InvalidProperty", "RetrievePropertiesEx with a path that does not exist on the type. vcsim: HTTP 200 with objects/missingSet{path, fault InvalidProperty}; real vCenter: SOAP fault InvalidProperty for the whole call. Handle both.",
                      obj_props(pc, "VirtualMachine", [a], ["config.noSuchProperty"]),
                      expect=[r"<missingSet><path>config.noSuchProperty</path><fault><fault xsi:type=\"InvalidProperty\"><name>config.noSuchProperty</name>"])
        t = self.call("ReconfigVM_Task-unit-in-use", "ReconfigVM_Task adding a disk on a controller unitNumber that is already taken: the call returns a Task, the Task ends in error InvalidDeviceSpec{deviceIndex}.",
                      '<ReconfigVM_Task xmlns="urn:vim25">%s<spec><deviceChange><operation>add</operation><fileOperation>create</fileOperation><device xsi:type="VirtualDisk"><key>-102</key>'
                      '<backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName></fileName><diskMode>persistent</diskMode></backing><controllerKey>%s</controllerKey><unitNumber>%d</unitNumber><capacityInKB>1024</capacityInKB></device></deviceChange></spec></ReconfigVM_Task>' % (mo("_this", "VirtualMachine", a), skey, unit),
                      expect=[r'<returnval type="Task">'])
        i = wait_task(returnval(t)[0].text)
        self.check(i["info.state"].text == "error" and i["info.error"].find("v:fault", NS).get(XSI_TYPE) == "InvalidDeviceSpec", "unit in use: expected task error InvalidDeviceSpec")

        # 11. logout
        self.call("Logout", "SessionManager.Logout: empty response; the cookie is dead afterwards.",
                  '<Logout xmlns="urn:vim25">%s</Logout>' % mo("_this", "SessionManager", sm), expect=[r"<LogoutResponse"])
        self.call("after-Logout", "Using the old cookie after Logout -> NotAuthenticated.",
                  '<PowerOnVM_Task xmlns="urn:vim25">%s</PowerOnVM_Task>' % mo("_this", "VirtualMachine", a), status=500, fault="NotAuthenticated")
        print("%d checks, %d failures" % (self.checks, len(self.failures)))
        for f in self.failures:
            print("  FAILED: " + f)
        return 1 if self.failures else 0


def abridge(text, keep=2):
    """Pretty-print the raw answer (original prefixes and xmlns kept, as the server sent them) and keep only the
    first `keep` repeats of <objects>, <VirtualDevice> and <ManagedObjectReference> in each parent."""
    import xml.dom.minidom as md
    try:
        doc = md.parseString(text.encode())
    except Exception:
        return text[:4000]

    def walk(e):
        seen, drop = {}, []
        for c in list(e.childNodes):
            if c.nodeType != c.ELEMENT_NODE:
                continue
            name = c.localName
            seen[name] = seen.get(name, 0) + 1
            if name in ("objects", "VirtualDevice", "ManagedObjectReference") and seen[name] > keep:
                drop.append(c)
            else:
                walk(c)
        for c in drop:
            e.removeChild(c)
        if drop:
            e.appendChild(doc.createComment(" %d more %s elided " % (len(drop), drop[0].localName)))
    walk(doc.documentElement)
    out = doc.documentElement.toprettyxml(indent="  ")
    return "\n".join(l for l in out.splitlines() if l.strip())


if __name__ == "__main__":
    args = sys.argv[1:]
    wd = None
    if args and args[0] == "--write":
        wd = args[1]
        args = args[2:]
        os.makedirs(wd, exist_ok=True)
    url = args[0] if args else "http://user:pass@127.0.0.1:8989/sdk"
    sys.exit(Run(url, wd).main())
