package main

import (
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/router"
)

// newNodeResetSessionCmd is `bgpfabric node reset-session --peer ADDR`: it
// asks a node's router, over its control socket (as `bgpfabric routes`
// does), to reset one BGP session (router/sessionreset.go).
func newNodeResetSessionCmd(g *globalOptions) *cobra.Command {
	var node, dir, peer string
	cmd := &cobra.Command{
		Use:   "reset-session --peer ADDR [--node NAME]",
		Short: "Reset one BGP session of a node: a NOTIFICATION Cease (Administrative Reset), then the session comes back",
		Long: `Reset-session asks a node's router, over its control socket (<control-dir>/
router.<node>.sock, as bgpfabric routes does), to end its BGP session with the
peer at ADDR with a NOTIFICATION Cease, Administrative Reset (RFC 4486); the
session comes back by itself after a few seconds. A peer the node has no
session with is an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := netip.ParseAddr(peer)
			if err != nil {
				return fmt.Errorf("--peer: want the peer's IP address: %w", err)
			}
			sock, err := routerSocket(dir, node)
			if err != nil {
				return err
			}
			if err := router.ResetSession(cmd.Context(), sock, a); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "session with %s reset\n", a)
			return nil
		},
	}
	cmd.Flags().StringVar(&peer, "peer", "", "the peer's address (as in bgpfabric status)")
	cmd.Flags().StringVar(&node, "node", envOr("BGPFABRIC_NODE_NAME", ""), "the node whose router to ask; env BGPFABRIC_NODE_NAME")
	cmd.Flags().StringVar(&dir, "control-dir", router.DefaultControlDir, "directory of the routers' control sockets")
	_ = cmd.MarkFlagRequired("peer")
	return cmd
}
