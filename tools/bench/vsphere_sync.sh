#!/usr/bin/env bash
# The whole `opsbot sync` path against a vcsim with about 10,000 VMs (8 clusters × 8 hosts
# and a standalone host, 1,111 VMs per pool): a first sync into a fresh SQLite store, a
# re-sync with nothing changed, one after an outside power-off, and one more unchanged.
# Prints each run's output, wall time and peak RSS.
#   tools/bench/vsphere_sync.sh [path/to/opsbot] [path/to/vcsim]
set -euo pipefail
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/opsbot}
VCSIM=${2:-${OPSBOT_VCSIM:-$HOME/.cache/vcsim/vcsimlite}}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'kill "$SIM" 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$VCSIM" -l 127.0.0.1:0 -cluster 8 -host 8 -vm 1111 > "$WORK/vcsim.out" 2>/dev/null &
SIM=$!
until grep -q /sdk "$WORK/vcsim.out"; do sleep 0.2; done
URL=$(head -n1 "$WORK/vcsim.out")
cat > "$WORK/opsbot.toml" <<TOML
[store]
url = "sqlite://$WORK/opsbot.db"
[[providers]]
name = "vc1"
kind = "vsphere"
url = "${URL/user:pass@/}"
username = "user"
password = "pass"
TOML
run() { echo "== $1"; /usr/bin/time -f "wall %e s, peak RSS %M KB" "$BIN" sync --config "$WORK/opsbot.toml"; }
run "first sync"
run "re-sync, nothing changed"
READER="$HERE/../../crates/opsbot-vsphere/tests/common/reader.py"
export VSOAP_DIR="$HERE/../../crates/opsbot-vsphere/tests/common"
VM=$(python3 "$READER" "$URL" vm-id DC0_H0_VM0 | tr -d '[]" ')
python3 "$READER" "$URL" act "$VM" PowerOffVM_Task > /dev/null
run "re-sync after one VM was powered off outside opsbot"
run "re-sync, nothing changed"
