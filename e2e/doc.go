// Package e2e boots the shipped topologies (topologies/*.yaml) through the
// sim package with the real agents — `bgpfabric node`, `bgpfabric
// reflector`, the CNI plugin through libcni, FRR and BIRD — and asserts
// what a fabric engineer judges the fabric by: connectivity where policy
// allows it and none where it does not, exactly the routes expected,
// convergence within the topology's deadline, and the behaviour under
// faults (a reflector of a pair dies, a node agent crashes and restarts
// with graceful restart under a live TCP stream, a link goes down, the
// datastore stops).
//
// The tests need root: they skip without it, and fail when CI=true
// (internal/nstest.RequireRoot). TestMain builds the bgpfabric binary once
// into a temporary directory (or uses $BGPFABRIC_BIN). The Kubernetes
// tests (kubernetes_test.go) also need the kube-apiserver that `make
// kube-apiserver` builds (internal/kubetest.Binary: skipped without it,
// failed under CI=true) and build bgpfabric-kube-controllers beside the
// binary the first time one runs (with $BGPFABRIC_BIN, `make build` has
// put it there). Everything a test creates is removed through t.Cleanup,
// also when it fails.
//
// The benchmarks (bench_test.go) boot the 50- and 100-node fabrics:
//
//	go test ./e2e -run '^$' -bench . -benchtime 1x
package e2e
