#!/bin/sh
# Builds opsbot's test simulator "vcsimlite": VMware's vCenter simulator (govmomi's VPX model)
# with a few knobs, from Debian 12's packaged govmomi 0.24.2. The vSphere tests and benchmarks
# start it (OPSBOT_VCSIM, default $HOME/.cache/vcsim/vcsimlite); .ci/run builds it once.
# Installs its Debian build dependencies when they are missing (needs root and the Debian
# mirror, nothing else).
#   WORKDIR  build GOPATH and Go cache (default $HOME/.cache/vcsim/build)
#   OUT      binary path   (default $HOME/.cache/vcsim/vcsimlite)
#   SKIP_APT=1 never runs apt-get
# Prints the absolute path of the built binary as the last line on stdout.
set -eu
WORKDIR=${WORKDIR:-$HOME/.cache/vcsim/build}
OUT=${OUT:-$HOME/.cache/vcsim/vcsimlite}
PACKAGES="golang-go golang-github-vmware-govmomi-dev golang-github-google-uuid-dev"

# shellcheck disable=SC2086 # PACKAGES is a word list
if [ "${SKIP_APT:-0}" != 1 ] && ! dpkg -s $PACKAGES >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends $PACKAGES >&2
fi

mkdir -p "$WORKDIR/src/vcsimlite" "$(dirname "$OUT")"
cat > "$WORKDIR/src/vcsimlite/main.go" <<'EOF'
// vcsimlite: govmomi's vCenter simulator (VPX model) with a few knobs.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator" // REST (/rest/com/vmware/cis/...) endpoints, enabled by -rest
)

func main() {
	addr := flag.String("l", "127.0.0.1:8989", "listen address host:port (port 0 = pick a free one)")
	dc := flag.Int("dc", 1, "datacenters")
	clusters := flag.Int("cluster", 1, "clusters per datacenter")
	hosts := flag.Int("host", 3, "hosts per cluster")
	standalone := flag.Int("standalone-host", 1, "standalone hosts per datacenter")
	vms := flag.Int("vm", 2, "VMs per resource pool: each cluster's root pool, each extra pool, each standalone host (govmomi Model.Machine)")
	pools := flag.Int("pool", 0, "extra child resource pools per cluster (each also gets -vm VMs)")
	ds := flag.Int("ds", 1, "datastores (mounted on every host)")
	pg := flag.Int("pg", 1, "distributed port groups per datacenter")
	autostart := flag.Bool("autostart", true, "power on the generated VMs")
	rest := flag.Bool("rest", false, "also serve the vAPI REST endpoints under /rest")
	useTLS := flag.Bool("tls", false, "serve https with a self-signed certificate instead of http")
	flag.Parse()

	model := simulator.VPX()
	model.Datacenter = *dc
	model.Cluster = *clusters
	model.ClusterHost = *hosts
	model.Host = *standalone
	model.Machine = *vms
	model.Pool = *pools
	model.Datastore = *ds
	model.Portgroup = *pg
	model.Autostart = *autostart
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	c := model.Count()
	fmt.Fprintf(os.Stderr, "vcsimlite: %d datacenters, %d clusters, %d hosts, %d VMs, %d datastores, %d port groups\n",
		c.Datacenter, c.Cluster, c.Host, c.Machine, c.Datastore, c.Portgroup)

	model.Service.Listen = &url.URL{Host: *addr}
	model.Service.RegisterEndpoints = *rest
	if *useTLS {
		model.Service.TLS = new(tls.Config)
	}
	s := model.Service.NewServer()
	fmt.Println(s.URL.String()) // e.g. http://user:pass@127.0.0.1:8989/sdk ; any user/password is accepted

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	s.Close()
	model.Remove()
	os.Exit(0)
}
EOF

cd "$WORKDIR"
GO111MODULE=off GOPATH="$WORKDIR:/usr/share/gocode" GOCACHE="${GOCACHE:-$WORKDIR/.cache}" \
  go build -o "$OUT" vcsimlite
readlink -f "$OUT"
