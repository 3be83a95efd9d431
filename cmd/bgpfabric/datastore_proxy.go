//go:build !nodeonly

package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/datastore"
)

func newDatastoreProxyCmd(g *globalOptions) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "proxy --listen unix:///path.sock",
		Short: "Serve etcd's gRPC proxy in front of --datastore, for large fabrics",
		Long: `Proxy runs etcd's own gRPC proxy (KV, watch, lease and cluster services) on a
unix socket, in front of the datastore that --datastore names. Agents pointed
at the proxy's socket share its upstream watches: etcd sends each change once
to the proxy instead of once to every agent. See docs/scale.md. It runs until
interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listen == "" {
				return errors.New("--listen is required")
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := g.agentClient(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			p, err := datastore.StartProxy(ctx, datastore.ProxyConfig{Upstream: c, Listen: listen, Logger: log})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "serving %s\n", p.Endpoint())
			<-ctx.Done()
			log.Info("datastore proxy stopping")
			return p.Close()
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "the proxy's endpoint: unix:///absolute/path.sock")
	return cmd
}
