package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"

	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/router/gobgp"
)

func init() { addNodeComponent(routerComponent) }

// routerComponent is the node's BGP speaker (router.Router on GoBGP).
var routerComponent = nodeComponent{
	name: "router",
	setup: func(fs *pflag.FlagSet) func(*nodeEnv) (func(context.Context) error, error) {
		var enabled bool
		var secretsDir, policyFile, controlDir, metricsAddr string
		var statusInterval time.Duration
		fs.BoolVar(&enabled, "bgp", true, "run the BGP router (advertise this node's routes, install the peers')")
		fs.StringVar(&secretsDir, "secrets-dir", envOr("BGPFABRIC_SECRETS_DIR", ""),
			"directory of BGP passwords: file <secret name>/<key> (else env BGPFABRIC_SECRET_<NAME>_<KEY>); env BGPFABRIC_SECRETS_DIR")
		fs.StringVar(&policyFile, "route-policy", "", "YAML file of BGP import/export filters (see router.Policy)")
		fs.StringVar(&controlDir, "control-dir", router.DefaultControlDir, "directory of the router's control socket router.<node>.sock, which the routes command reads")
		fs.StringVar(&metricsAddr, "bgp-metrics-addr", "", "serve the router's Prometheus metrics on this loopback address (e.g. 127.0.0.1:9091)")
		fs.DurationVar(&statusInterval, "bgp-status-interval", router.DefaultStatusInterval, "how often peer counters are refreshed in the status")
		return func(env *nodeEnv) (func(context.Context) error, error) {
			if !enabled {
				return func(ctx context.Context) error { <-ctx.Done(); return nil }, nil
			}
			var pol *router.Policy
			if policyFile != "" {
				var err error
				if pol, err = router.LoadPolicy(policyFile); err != nil {
					return nil, err
				}
			}
			var reg *prometheus.Registry
			if metricsAddr != "" {
				host, _, err := net.SplitHostPort(metricsAddr)
				if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
					return nil, fmt.Errorf("--bgp-metrics-addr %q: want a loopback address and port", metricsAddr)
				}
				reg = prometheus.NewRegistry()
			}
			lg := env.Log.With("component", "router")
			cfg := router.Config{
				NodeName:       env.NodeName,
				Resources:      router.DatastoreResources(env.Client),
				Speaker:        gobgp.New(gobgp.Config{Logger: lg.With("component", "gobgp")}),
				Netns:          env.Netns,
				Secrets:        router.Secrets{Dir: secretsDir},
				Policy:         pol,
				StatusInterval: statusInterval,
				ControlSocket:  router.ControlSocketPath(controlDir, env.NodeName),
				Logger:         lg,
			}
			if reg != nil {
				cfg.Metrics = reg
			}
			return func(ctx context.Context) error {
				st, err := router.DatastoreStatus(ctx, env.Client)
				if err != nil {
					return err
				}
				cfg.Status = st
				r, err := router.New(cfg)
				if err != nil {
					st.Close()
					return err
				}
				if reg != nil {
					srv := &http.Server{Addr: metricsAddr, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
					go func() {
						if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
							lg.Error("metrics server", "error", err)
						}
					}()
					defer srv.Close()
				}
				return r.Run(ctx)
			}, nil
		}
	},
}
