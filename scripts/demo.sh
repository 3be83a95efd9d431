#!/bin/bash
# The main job until the simulator lands: start the embedded datastore on a
# unix socket, apply the example fabric from examples/, read it back, and
# stop, leaving nothing behind (also on failure or Ctrl-C).
set -euo pipefail
BIN=${1:-bin/bgpfabric}
cd "$(dirname "$0")/.."

RUN=$(mktemp -d /tmp/bgpfabric-demo.XXXXXX)
SOCK="unix://$RUN/etcd.sock"
PID=""
cleanup() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID"
		wait "$PID" || true
	fi
	rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN" version
"$BIN" datastore serve --data-dir "$RUN/data" --listen "$SOCK" --log-level warn &
PID=$!
export BGPFABRIC_DATASTORE="$SOCK"
"$BIN" datastore wait --timeout 60s

echo "== apply examples/"
for f in examples/*.yaml; do
	"$BIN" apply -f "$f"
done

for kind in nodes bgpconfigurations bgppeers ippools profiles globalnetworkpolicies; do
	echo "== get $kind"
	"$BIN" get "$kind"
done
echo "== get networkpolicies -A"
"$BIN" get networkpolicies -A
echo "== get node node-1 -o yaml"
"$BIN" get node node-1 -o yaml

echo "== a bad document is rejected and changes nothing"
if "$BIN" apply -f - <<'YAML'; then
apiVersion: bgpfabric.io/v1
kind: IPPool
metadata:
  name: broken-pool
spec:
  cidr: 10.300.0.0/16
YAML
	echo "demo: the invalid pool was accepted" >&2
	exit 1
fi
if "$BIN" get ippool broken-pool >/dev/null 2>&1; then
	echo "demo: the invalid pool was stored" >&2
	exit 1
fi
echo "demo: ok"
