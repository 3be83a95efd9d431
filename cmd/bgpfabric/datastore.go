//go:build !nodeonly

package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/datastore"
)

func init() { addCommand(newDatastoreCmd) }

func newDatastoreCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "datastore",
		Short: "Serve the embedded etcd datastore, or wait for a datastore",
	}
	cmd.AddCommand(newDatastoreServeCmd(g), newDatastoreWaitCmd(g), newDatastoreProxyCmd(g))
	return cmd
}

func newDatastoreServeCmd(g *globalOptions) *cobra.Command {
	var dataDir, listen string
	cmd := &cobra.Command{
		Use:   "serve --data-dir DIR [--listen URL]",
		Short: "Run an embedded etcd for a single-machine fabric",
		Long: `Serve runs etcd inside this process, listening on a unix socket (the default,
which every network namespace of the machine reaches through the filesystem)
or on a loopback address, and stores its data in --data-dir. It runs until
interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return errors.New("--data-dir is required")
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			e, err := datastore.StartEmbedded(cmd.Context(), datastore.EmbeddedConfig{
				DataDir: dataDir,
				Listen:  listen,
				Logger:  log,
			})
			if err != nil {
				return err
			}
			log.Info("datastore serving", "endpoint", e.ClientEndpoint(), "data-dir", dataDir)
			fmt.Fprintf(g.stdout, "serving %s\n", e.ClientEndpoint())
			<-cmd.Context().Done()
			log.Info("datastore stopping")
			return e.Close()
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "directory for etcd's data")
	cmd.Flags().StringVar(&listen, "listen", DefaultDatastore, "client URL: unix:///path.sock or http://127.0.0.1:PORT")
	return cmd
}

func newDatastoreWaitCmd(g *globalOptions) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait until the datastore answers, up to --timeout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			var last error
			for {
				c, err := g.client(ctx)
				if err == nil {
					_, _, err = c.List(ctx, "Node", "")
					c.Close()
					if err == nil {
						fmt.Fprintln(g.stdout, "datastore ready")
						return nil
					}
				}
				last = err
				select {
				case <-ctx.Done():
					return fmt.Errorf("datastore %s not ready after %s: %w", g.datastore, timeout, last)
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait")
	return cmd
}
