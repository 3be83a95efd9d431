package main

import (
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/linkcheck"
)

// TestLinksTheSpeakerOnly: the speaker's own binary is small because it
// links GoBGP and the speaker protocol and nothing of the node agent or
// the etcd server (docs/scale.md, "Memory at rest"). A speaker package
// that imports router (for a type that router/speaker has) pulls in the
// datastore and etcd and costs every node's speaker process megabytes.
func TestLinksTheSpeakerOnly(t *testing.T) {
	deps := linkcheck.Deps(t, ".")
	linkcheck.RequireNone(t, deps,
		"go.etcd.io",
		"github.com/bgpfabric/bgpfabric/datastore",
		"github.com/bgpfabric/bgpfabric/felix",
		"github.com/bgpfabric/bgpfabric/sim",
		"github.com/bgpfabric/bgpfabric/reflector",
	)
	for _, d := range deps {
		if d == "github.com/bgpfabric/bgpfabric/router" {
			t.Errorf("links %s (the node's router; the speaker needs router/speaker only)", d)
		}
	}
}
