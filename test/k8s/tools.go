//go:build tools

// Package k8s pins the Kubernetes components the tests run against: a
// separate module, so that their dependency graph stays out of bgpfabric's
// go.mod. scripts/kube-apiserver.sh builds the binary from here.
package k8s

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
