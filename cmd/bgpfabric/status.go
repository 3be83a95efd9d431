//go:build !nodeonly

package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

func init() { addCommand(newStatusCmd) }

func newStatusCmd(g *globalOptions) *cobra.Command {
	var node string
	cmd := &cobra.Command{
		Use:   "status [--node NAME]",
		Short: "Show the BGP sessions of a node (or of every node)",
		Long: `Status prints the BGP peers of a node as its router last reported them in
the datastore (BGPStatus, kept under a lease: a node that stopped disappears),
like calicoctl node status: peer address, AS, why the session exists (mesh,
global, node, reflector, reflectorClient), state, since when, prefix counters
and the last error. Without --node it prints every node's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var sts []*api.BGPStatus
			if node != "" {
				r, err := c.Get(cmd.Context(), api.KindBGPStatus, "", node)
				if errors.Is(err, datastore.ErrNotFound) {
					return fmt.Errorf("node %s has no BGP status: its router is not running (or has not reported yet)", node)
				}
				if err != nil {
					return err
				}
				sts = append(sts, r.(*api.BGPStatus))
			} else {
				rs, _, err := c.List(cmd.Context(), api.KindBGPStatus, "")
				if err != nil {
					return err
				}
				if len(rs) == 0 {
					return errors.New("no node has reported BGP status: no router is running")
				}
				for _, r := range rs {
					sts = append(sts, r.(*api.BGPStatus))
				}
				sort.Slice(sts, func(i, j int) bool { return sts[i].Name < sts[j].Name })
			}
			for i, st := range sts {
				if i > 0 {
					fmt.Fprintln(g.stdout)
				}
				printBGPStatus(g.stdout, st, time.Now())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the node to show (default: every node)")
	return cmd
}

// printBGPStatus renders one node's status as calicoctl node status does.
func printBGPStatus(w io.Writer, st *api.BGPStatus, now time.Time) {
	s := st.Status
	fmt.Fprintf(w, "Node %s: router ID %s, AS %d, reported %s\n", st.Name, s.RouterID, s.ASNumber, ago(s.LastUpdate, now))
	if len(s.Peers) == 0 {
		fmt.Fprintln(w, "No BGP peers.")
		return
	}
	var v4, v6 []api.BGPPeerStatus
	for _, p := range s.Peers {
		if strings.Contains(p.PeerIP, ":") {
			v6 = append(v6, p)
		} else {
			v4 = append(v4, p)
		}
	}
	for _, fam := range []struct {
		name  string
		peers []api.BGPPeerStatus
	}{{"IPv4", v4}, {"IPv6", v6}} {
		if len(fam.peers) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s BGP status\n", fam.name)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PEER ADDRESS\tAS\tPEER TYPE\tSTATE\tSINCE\tRECEIVED\tACCEPTED\tADVERTISED\tINFO")
		for _, p := range fam.peers {
			state := "start"
			if p.State == api.BGPEstablished {
				state = "up"
			} else if p.State != api.BGPIdle {
				state = "connecting"
			}
			info := string(p.State)
			if p.Policy != "" {
				info += " [policy: " + p.Policy + "]"
			}
			if p.LastError != "" {
				info += " (" + p.LastError + ")"
			}
			if p.BFD != "" {
				info += ", BFD " + p.BFD
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", p.PeerIP, p.ASNumber, peerTypeName(p.Type), state,
				sinceText(p.Since, now), p.PrefixesReceived, p.PrefixesAccepted, p.PrefixesAdvertised, info)
		}
		tw.Flush()
	}
}

func peerTypeName(t api.BGPPeerType) string {
	switch t {
	case api.PeerTypeMesh:
		return "node-to-node mesh"
	case api.PeerTypeGlobal:
		return "global"
	case api.PeerTypeNode:
		return "node specific"
	case api.PeerTypeReflector:
		return "route reflector"
	case api.PeerTypeReflectorClient:
		return "reflector client"
	}
	return string(t)
}

func sinceText(ts string, now time.Time) string {
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return "-"
	}
	if now.Sub(t) < 24*time.Hour {
		return t.Local().Format("15:04:05")
	}
	return t.Local().Format("2006-01-02")
}

func ago(ts string, now time.Time) string {
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return "at an unknown time"
	}
	return fmt.Sprintf("%s ago", now.Sub(t).Truncate(time.Second))
}
