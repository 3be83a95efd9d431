package main

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bgpfabric/bgpfabric/bfd"
	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/router/gobgp"
	"github.com/bgpfabric/bgpfabric/router/speakerproc"
)

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
			return speakerproc.RunChild()
		},
	}
}

func init() { addNodeComponent(routerComponent) }

// routerComponent is the node's BGP speaker (router.Router on GoBGP). Its
// metrics and readiness are served by the node's shared observe server
// (--http-addr: /metrics, /readyz).
var routerComponent = nodeComponent{
	name: "router",
	setup: func(fs *pflag.FlagSet) func(*nodeEnv) (func(context.Context) error, error) {
		var enabled, speakerProcess bool
		var secretsDir, policyFile, controlDir string
		var statusInterval time.Duration
		fs.BoolVar(&enabled, "bgp", true, "run the BGP router (advertise this node's routes, install the peers')")
		fs.StringVar(&secretsDir, "secrets-dir", envOr("BGPFABRIC_SECRETS_DIR", ""),
			"directory of BGP passwords: file <secret name>/<key> (else env BGPFABRIC_SECRET_<NAME>_<KEY>); env BGPFABRIC_SECRETS_DIR")
		fs.StringVar(&policyFile, "route-policy", "", "YAML file of BGP import/export filters (see router.Policy)")
		fs.StringVar(&controlDir, "control-dir", router.DefaultControlDir, "directory of the router's control socket router.<node>.sock, which the routes command reads")
		fs.BoolVar(&speakerProcess, "bgp-speaker-process", true,
			"run the BGP speaker (GoBGP) in a supervised child process, so that a peer's message that crashes it costs only the speaker, which restarts with graceful restart (docs/robustness.md); false runs it in the node's process")
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
			lg := env.Log.With("component", "router")
			var sp router.Speaker
			if speakerProcess {
				sp = speakerproc.New(speakerproc.Config{Command: speakerproc.Command(speakerproc.SelfCommand("node", "speaker"), env.Log), Logger: env.Log})
			} else {
				sp = gobgp.New(gobgp.Config{Logger: lg.With("component", "gobgp")})
			}
			cfg := router.Config{
				NodeName:       env.NodeName,
				Resources:      router.DatastoreResources(env.Client),
				Speaker:        sp,
				Netns:          env.Netns,
				Secrets:        router.Secrets{Dir: secretsDir},
				Policy:         pol,
				StatusInterval: statusInterval,
				ControlSocket:  router.ControlSocketPath(controlDir, env.NodeName),
				Metrics:        env.Observe.Registry(),
				Logger:         lg,
				// In this process, not the speaker's: BFD goes on while
				// the speaker restarts; sockets in the process's
				// namespace, where the BGP sessions are.
				BFD: func() (router.BFDServer, error) {
					srv, err := bfd.NewServer(bfd.ServerConfig{Logger: lg.With("component", "bfd")})
					if err != nil {
						return nil, err
					}
					return srv, nil
				},
			}
			// The router is made when it runs; until then it is not
			// ready.
			var running atomic.Pointer[router.Router]
			env.Observe.AddReadiness("router", func() error {
				if r := running.Load(); r != nil {
					return r.Ready()
				}
				return errors.New("router: not started")
			})
			return func(ctx context.Context) error {
				cfg.Status = router.SharedStatus(env.Status)
				r, err := router.New(cfg)
				if err != nil {
					return err
				}
				running.Store(r)
				defer running.Store(nil)
				return r.Run(ctx)
			}, nil
		}
	},
}
