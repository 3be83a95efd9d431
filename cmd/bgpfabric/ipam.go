//go:build !nodeonly

package main

import (
	"fmt"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/ipam"
)

func init() { addCommand(newIPAMCmd) }

func newIPAMCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ipam",
		Short: "Inspect and repair IP address management: show, check, release",
	}
	cmd.AddCommand(newIPAMShowCmd(g), newIPAMCheckCmd(g), newIPAMReleaseCmd(g))
	return cmd
}

// ipamClient connects to the datastore and returns an IPAM client of it
// with a function that closes the connection.
func (g *globalOptions) ipamClient(cmd *cobra.Command) (*ipam.Client, func(), error) {
	ds, err := g.client(cmd.Context())
	if err != nil {
		return nil, nil, err
	}
	log, _ := g.logger()
	c, err := ipam.New(ipam.Config{Store: ds, Logger: log})
	if err != nil {
		ds.Close()
		return nil, nil, err
	}
	return c, func() { ds.Close() }, nil
}

func newIPAMShowCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Show pools and blocks: affinity and how many addresses are in use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, done, err := g.ipamClient(cmd)
			if err != nil {
				return err
			}
			defer done()
			u, err := c.Usage(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "POOL\tCIDR\tBLOCK SIZE\tSTATE\tNODE SELECTOR\tBLOCKS\tIN USE\tSIZE")
			for _, p := range u.Pools {
				state := "enabled"
				if p.Disabled {
					state = "disabled"
				}
				fmt.Fprintf(tw, "%s\t%s\t/%d\t%s\t%s\t%d\t%d\t%s\n", p.Name, p.CIDR, p.BlockSize, state, p.NodeSelector, p.Blocks, p.Allocated, p.Size())
			}
			fmt.Fprintln(tw)
			fmt.Fprintln(tw, "BLOCK\tPOOL\tAFFINITY\tIN USE\tFREE\tBORROWED\tHANDLES")
			for _, b := range u.Blocks {
				aff := b.Affinity
				if aff == "" {
					aff = "-"
				} else if b.StrictAffinity {
					aff += " (strict)"
				}
				pool := b.Pool
				if pool == "" {
					pool = "(none)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", b.CIDR, pool, aff, b.Allocated, b.Free, b.Borrowed, b.Handles)
			}
			return tw.Flush()
		},
	}
}

func newIPAMCheckCmd(g *globalOptions) *cobra.Command {
	var opts ipam.CheckOptions
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Find leaked and inconsistent allocations and blocks of nodes that are gone",
		Long: `Check reads pools, blocks, nodes and workload endpoints and lists:
  leaked        allocations whose workload endpoint (or node) no longer exists
  node-gone     blocks affine to a node that no longer exists
  orphan-block  blocks in no pool
  inconsistent  allocations without handle or attribute, unused attributes,
                endpoint addresses that are not allocated to the endpoint
It changes nothing and exits non-zero when it finds a problem. Repair with
'ipam release'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, done, err := g.ipamClient(cmd)
			if err != nil {
				return err
			}
			defer done()
			problems, err := c.Check(cmd.Context(), opts)
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintln(g.stdout, p)
			}
			if len(problems) > 0 {
				return fmt.Errorf("ipam check found %d problems", len(problems))
			}
			fmt.Fprintln(g.stdout, "no problems found")
			return nil
		},
	}
	cmd.Flags().DurationVar(&opts.Grace, "grace", 0, "ignore allocations younger than this (an ADD in flight allocates before it writes its endpoint)")
	return cmd
}

func newIPAMReleaseCmd(g *globalOptions) *cobra.Command {
	var handle, node string
	var ips []string
	cmd := &cobra.Command{
		Use:   "release (--handle H | --ip IP[,IP...] | --node N)",
		Short: "Release the addresses of a handle, addresses by value, or the blocks of a node that left",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			given := 0
			for _, set := range []bool{handle != "", len(ips) > 0, node != ""} {
				if set {
					given++
				}
			}
			if given != 1 {
				return fmt.Errorf("give exactly one of --handle, --ip and --node")
			}
			var addrs []netip.Addr
			for _, s := range ips {
				a, err := netip.ParseAddr(strings.TrimSpace(s))
				if err != nil {
					return fmt.Errorf("--ip %q: %w", s, err)
				}
				addrs = append(addrs, a)
			}
			c, done, err := g.ipamClient(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			switch {
			case node != "":
				deleted, released, err := c.ReleaseNodeBlocks(ctx, node)
				for _, b := range deleted {
					fmt.Fprintf(g.stdout, "block %s deleted\n", b)
				}
				for _, b := range released {
					fmt.Fprintf(g.stdout, "block %s released (no affinity; deleted when its last address is released)\n", b)
				}
				return err
			case handle != "":
				rel, err := c.ReleaseByHandle(ctx, handle)
				printReleased(g, rel, "handle "+handle)
				return err
			default:
				rel, err := c.ReleaseIPs(ctx, addrs)
				printReleased(g, rel, "")
				return err
			}
		},
	}
	cmd.Flags().StringVar(&handle, "handle", "", "release every address of this handle")
	cmd.Flags().StringSliceVar(&ips, "ip", nil, "release these addresses, whoever holds them")
	cmd.Flags().StringVar(&node, "node", "", "give up the blocks of this node (for a node that left the fabric)")
	return cmd
}

func printReleased(g *globalOptions, ips []netip.Addr, of string) {
	if len(ips) == 0 {
		if of != "" {
			fmt.Fprintf(g.stdout, "nothing to release for %s\n", of)
		} else {
			fmt.Fprintln(g.stdout, "nothing to release: the addresses are not allocated")
		}
		return
	}
	for _, ip := range ips {
		fmt.Fprintf(g.stdout, "%s released\n", ip)
	}
}
