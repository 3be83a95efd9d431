//go:build !nodeonly

package main

import (
	"errors"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/router/gobgp"
	"github.com/bgpfabric/bgpfabric/router/speakerproc"
)

// The node's BGP speaker from this binary (selfSpeaker): bgpfabric links
// GoBGP, bgpfabric-node does not.
func init() {
	selfSpeaker = &selfSpeakerHooks{command: newNodeSpeakerCmd, inProcess: newGoBGPSpeaker}
}

// newGoBGPSpeaker is router/gobgp's speaker, logging to lg.
func newGoBGPSpeaker(lg *slog.Logger) router.Speaker {
	return gobgp.New(gobgp.Config{Logger: lg.With("component", "gobgp")})
}

// newNodeSpeakerCmd is the hidden `bgpfabric node speaker`: the node's BGP
// speaker as the node's child process (router/speakerproc). It serves the
// parent on file descriptor 3 and dies with it; nobody runs it by hand.
func newNodeSpeakerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "speaker",
		Short:  "The node's BGP speaker process (started by bgpfabric node)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if os.Getenv(speakerproc.EnvChild) == "" {
				return errors.New("node speaker: run by bgpfabric node only (no channel)")
			}
			return speakerproc.RunChild(newGoBGPSpeaker)
		},
	}
}
