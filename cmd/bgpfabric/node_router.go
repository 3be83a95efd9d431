package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bgpfabric/bgpfabric/bfd"
	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/router/speakerproc"
)

// selfSpeaker, set by node_speaker_self.go (not built into bgpfabric-node),
// is the node's BGP speaker from this binary: the hidden `node speaker`
// command that runs it as the node's child when no bgpfabric-speaker is
// installed beside this binary, and the speaker in the node's process
// (--bgp-speaker-process=false). bgpfabric-node does not link GoBGP: it
// needs bgpfabric-speaker.
var selfSpeaker *selfSpeakerHooks

type selfSpeakerHooks struct {
	// command is `node speaker`.
	command func() *cobra.Command
	// inProcess makes the speaker in this process.
	inProcess func(lg *slog.Logger) router.Speaker
}

// speakerCommand is how the node starts its speaker child: the
// bgpfabric-speaker beside this binary, else this binary's `node speaker`;
// in bgpfabric-node, which has no speaker of its own, an error saying why
// bgpfabric-speaker cannot be used.
func speakerCommand(lg *slog.Logger) (func() *exec.Cmd, error) {
	if selfSpeaker != nil {
		return speakerproc.Command(speakerproc.SelfCommand("node", "speaker"), lg), nil
	}
	cmd, err := speakerproc.Find(lg)
	if err != nil {
		return nil, fmt.Errorf("this binary has no BGP speaker of its own and needs %s beside it (make build installs both): %w", speakerproc.BinaryName, err)
	}
	return cmd, nil
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
			switch {
			case speakerProcess:
				command, err := speakerCommand(env.Log)
				if err != nil {
					return nil, err
				}
				sp = speakerproc.New(speakerproc.Config{Command: command, Logger: env.Log})
			case selfSpeaker == nil:
				return nil, errors.New("--bgp-speaker-process=false: this binary (bgpfabric-node) has no BGP speaker of its own; run bgpfabric node for a speaker in the node's process")
			default:
				sp = selfSpeaker.inProcess(lg)
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
