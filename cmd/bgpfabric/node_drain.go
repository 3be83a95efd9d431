package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// newNodeDrainCmd is `bgpfabric node drain|undrain NODE`: it sets or
// clears the Node's spec.bgp.drain, the one source of truth of a node's
// graceful shutdown (router/drain.go, docs/policy.md), by compare-and-swap.
func newNodeDrainCmd(g *globalOptions, drain bool) *cobra.Command {
	use, short := "drain NODE", "Gracefully shut down a node's BGP: routes re-advertised with GRACEFUL_SHUTDOWN (65535:0), then its sessions closed"
	if !drain {
		use, short = "undrain NODE", "End a node's drain: its BGP sessions open again"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			changed, err := setNodeDrain(cmd.Context(), c, args[0], drain)
			if err != nil {
				return err
			}
			state := "drained"
			if !drain {
				state = "undrained"
			}
			if !changed {
				state = "already " + state
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s %s\n", args[0], state)
			return nil
		},
	}
}

// setNodeDrain sets the Node's spec.bgp.drain, retrying on a concurrent
// change; it reports whether anything changed.
func setNodeDrain(ctx context.Context, c *datastore.Client, name string, drain bool) (bool, error) {
	for range 10 {
		r, err := c.Get(ctx, api.KindNode, "", name)
		if err != nil {
			return false, fmt.Errorf("node %s: %w", name, err)
		}
		n := r.(*api.Node)
		if n.Spec.BGP == nil {
			return false, fmt.Errorf("node %s does not speak BGP (no spec.bgp): nothing to drain", name)
		}
		if n.Spec.BGP.Drain == drain {
			return false, nil
		}
		n.Spec.BGP.Drain = drain
		if _, err := c.Update(ctx, n); errors.Is(err, datastore.ErrConflict) {
			continue
		} else if err != nil {
			return false, fmt.Errorf("node %s: %w", name, err)
		}
		return true, nil
	}
	return false, fmt.Errorf("node %s: changed concurrently too often, try again", name)
}
