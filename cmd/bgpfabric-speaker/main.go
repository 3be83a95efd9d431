//go:debug multipathtcp=0

// Command bgpfabric-speaker is the BGP speaker of `bgpfabric node`: GoBGP
// in the node's supervised child process (router/speakerproc), in a
// binary of its own that links nothing else, so that the speaker process
// does not carry the memory that the embedded etcd, the simulator and the
// CLI cost every process of the bgpfabric binary (docs/architecture.md,
// "The speaker's own binary"). Install it beside bgpfabric; a node that
// finds none runs `bgpfabric node speaker` instead. It is not run by
// hand.
//
// The go:debug line is the bgpfabric binary's (cmd/bgpfabric/godebug.go):
// plain TCP listeners, on which Linux accepts the peers' TCP MD5 keys.
package main

import (
	"log/slog"

	"github.com/bgpfabric/bgpfabric/router/gobgp"
	"github.com/bgpfabric/bgpfabric/router/speaker"
	"github.com/bgpfabric/bgpfabric/router/speakerproc"
)

func main() {
	speakerproc.Main(func(lg *slog.Logger) speaker.Speaker {
		return gobgp.New(gobgp.Config{Logger: lg.With("component", "gobgp")})
	})
}
