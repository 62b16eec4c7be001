#!/usr/bin/env python3
"""The reference point for opsbot's vSphere sync benchmark: VMware's pyVmomi fetching
the same inventory properties from the same simulator, the way a CMDB script would
(one ContainerView + RetrievePropertiesEx per type, with the continuation loop).

    pip install pyvmomi
    python3 tools/bench/pyvmomi_sync.py http://127.0.0.1:8989/sdk user pass
"""
import sys
import time
from urllib.parse import urlparse

from pyVim.connect import SmartConnect, Disconnect
from pyVmomi import vim, vmodl

PATHS = {
    vim.Datacenter: ["name", "parent", "vmFolder", "hostFolder"],
    vim.Folder: ["name", "parent"],
    vim.ClusterComputeResource: ["name", "parent", "resourcePool"],
    vim.ComputeResource: ["name", "parent", "resourcePool"],
    vim.HostSystem: ["name", "parent", "summary.hardware", "runtime.connectionState", "runtime.powerState"],
    vim.Datastore: ["name", "summary.capacity", "summary.freeSpace", "summary.type"],
    vim.Network: ["name"],
    vim.dvs.DistributedVirtualPortgroup: ["name", "key", "config.defaultPortConfig", "config.uplink"],
    vim.VirtualMachine: [
        "name", "parent", "config.uuid", "config.instanceUuid", "config.hardware.numCPU",
        "config.hardware.memoryMB", "config.hardware.device", "runtime.powerState", "runtime.host",
        "guest.ipAddress", "guest.hostName", "guest.toolsRunningStatus", "guest.net",
        "summary.config.template", "config.guestFullName",
        # the properties opsbot's change token watches, read in a full sync too
        "config.changeVersion", "summary.config.numVirtualDisks", "summary.config.numEthernetCards",
        "network", "datastore",
    ],
}


def fetch(si, kind, paths):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(
            obj=view, skip=True,
            selectSet=[vmodl.query.PropertyCollector.TraversalSpec(name="traverseEntities", type=vim.view.ContainerView, path="view", skip=False)],
        )],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=kind, pathSet=paths)],
    )
    pc = content.propertyCollector
    objects = []
    result = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=1000))
    while result:
        objects.extend(result.objects)
        if not result.token:
            break
        result = pc.ContinueRetrievePropertiesEx(result.token)
    view.Destroy()
    return objects


def main():
    url, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
    u = urlparse(url)
    si = SmartConnect(host=u.hostname, port=u.port or (443 if u.scheme == "https" else 80), user=user, pwd=password,
                      protocol=u.scheme, disableSslCertValidation=True)
    try:
        started = time.perf_counter()
        counts = {kind.__name__: len(fetch(si, kind, paths)) for kind, paths in PATHS.items()}
        elapsed = time.perf_counter() - started
    finally:
        Disconnect(si)
    print(f"pyvmomi: {counts['vim.VirtualMachine']} VMs, {counts['vim.HostSystem']} hosts in {elapsed * 1000:.0f} ms")


if __name__ == "__main__":
    main()
