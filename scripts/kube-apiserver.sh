#!/bin/sh
# kube-apiserver.sh builds the kube-apiserver the Kubernetes tests run
# against (internal/kubetest) from source, from the tools module test/k8s
# (k8s.io/kubernetes pinned there, apart from bgpfabric's own go.mod), into
# the ignored cache directory .cache/k8s/. Nothing is downloaded but Go
# modules through the module proxy. A cold build takes about 9 minutes and
# 2.7 GB of memory on two cores; with Go's build cache warm, seconds.
#
# Usage: scripts/kube-apiserver.sh [output directory]
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/.cache/k8s"}
GO=${GO:-go}

mkdir -p "$out"
cd "$root/test/k8s"
# -trimpath keeps the module cache's paths out of the binary; CGO_ENABLED=0
# needs no C toolchain. The binary is written under a temporary name and
# renamed, so an interrupted build never leaves a truncated binary behind.
CGO_ENABLED=0 "$GO" build -trimpath -o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$out/kube-apiserver.tmp" "$out/kube-apiserver"
echo "kube-apiserver: $out/kube-apiserver"
