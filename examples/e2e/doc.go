// Package example is a user's own end-to-end test of a fabric, written
// against bgpfabric's Go API (package sim): fabric_test.go boots
// fabric.yaml, checks it, degrades the network under it and checks again.
//
// It carries the build tag e2e, so that `go test ./...` of this
// repository leaves it out: it needs root, and a bgpfabric binary for the
// agents (BGPFABRIC_BIN, or bgpfabric on $PATH). Run it with
//
//	go build -o /tmp/bgpfabric ./cmd/bgpfabric
//	sudo BGPFABRIC_BIN=/tmp/bgpfabric go test -tags e2e ./examples/e2e/
//
// In your own repository, copy both files and keep the tag (or give the
// test a package of its own that your usual test run skips).
package example
