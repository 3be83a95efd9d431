package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/felix"
	"github.com/bgpfabric/bgpfabric/felix/nft"
	"github.com/bgpfabric/bgpfabric/internal/memtrim"
	"github.com/bgpfabric/bgpfabric/internal/observe"
)

func init() {
	addCommand(newNodeCmd)
	addNodeComponent(felixComponent)
	binaryCommands[nodeBinaryName] = "node"
}

// nodeBinaryName is the node agent's own binary: this one built with the
// nodeonly tag, which leaves out every command but node (and version), and
// with them the embedded etcd server, the simulator and the reflector, so
// that node agents do not carry their code and start-up work
// (docs/scale.md, "Memory at rest"). Named so, it runs the node command
// without its name. The simulator runs node agents from it when it is
// installed beside bgpfabric (sim.NodeBinaryName).
const nodeBinaryName = "bgpfabric-node"

// nodeEnv is what the components of `bgpfabric node` share.
type nodeEnv struct {
	// NodeName is this node's name in the datastore.
	NodeName string
	// Client is the datastore; the command closes it after every
	// component has stopped.
	Client *datastore.Client
	// Netns is the network namespace to program: the one --netns names,
	// or netns.None() for the process's own.
	Netns netns.NsHandle
	Log   *slog.Logger
	// Status is the node's status writer: one lease for the records of
	// every component (FelixStatus, BGPStatus), closed by the command
	// after every component has stopped.
	Status *datastore.StatusWriter
	// Observe serves /livez, /readyz and /metrics for every component:
	// components register their metrics with Observe.Registry() and their
	// health checks with AddLiveness/AddReadiness.
	Observe *observe.Server
}

// nodeComponent is one part of the node agent (felix; the BGP router
// joins it through its own addNodeComponent). setup registers the
// component's flags on a fresh command and returns the function that
// builds the component once the flags are parsed; the built run function
// runs it until ctx ends. A component that returns an error stops the
// whole node.
type nodeComponent struct {
	name  string
	setup func(fs *pflag.FlagSet) (build func(env *nodeEnv) (run func(ctx context.Context) error, err error))
}

// nodeComponents are the node's components, in the order they are built.
var nodeComponents []nodeComponent

func addNodeComponent(c nodeComponent) { nodeComponents = append(nodeComponents, c) }

// felixComponent programs routes, interfaces and ACLs (felix.Agent).
var felixComponent = nodeComponent{
	name: "felix",
	setup: func(fs *pflag.FlagSet) func(*nodeEnv) (func(context.Context) error, error) {
		var resync time.Duration
		fs.DurationVar(&resync, "resync-interval", felix.DefaultResyncInterval, "how often felix re-reads the kernel and repairs differences")
		acl := addACLFlags(fs)
		nat := fs.Bool("nat-outgoing", true, "masquerade the traffic of IPPools with natOutgoing (nftables table inet "+nft.DefaultNATTable+"); false: never")
		return func(env *nodeEnv) (func(context.Context) error, error) {
			newACL, err := acl(env.NodeName)
			if err != nil {
				return nil, err
			}
			cfg := felix.Config{
				NodeName:       env.NodeName,
				Client:         env.Client,
				Netns:          env.Netns,
				Logger:         env.Log.With("component", "felix"),
				ResyncInterval: resync,
				Status:         env.Status,
				NewACL:         newACL,
			}
			if *nat {
				cfg.NewNAT = func(ns netns.NsHandle) (felix.NAT, error) {
					fd := 0
					if ns.IsOpen() {
						fd = int(ns)
					}
					return nft.NewNAT(nft.NATConfig{NetNS: fd}), nil
				}
			}
			if cfg.Metrics, err = felix.NewMetrics(env.Observe.Registry()); err != nil {
				return nil, err
			}
			a, err := felix.New(cfg)
			if err != nil {
				return nil, err
			}
			env.Observe.AddLiveness("felix", a.Live)
			env.Observe.AddReadiness("felix", a.Ready)
			return a.Run, nil
		}
	},
}

func newNodeCmd(g *globalOptions) *cobra.Command {
	var nodeName, nsName, httpAddr string
	var statusTTL time.Duration
	cmd := &cobra.Command{
		Use:   "node [--node-name NAME] [--netns NETNS]",
		Short: "Run the node agent (felix and the BGP router) until SIGTERM",
		Long: `Node runs the per-host agent: felix, which programs the routes to this node's
workloads, blackholes for its IPAM blocks, the workload interfaces' settings
and the ACLs from the datastore; and the BGP router, which keeps this node's
BGP sessions as the datastore's Nodes, BGPConfigurations and BGPPeers say,
advertises what felix programmed and installs the routes its peers learned
(--bgp=false turns it off). Both report their status in the datastore and
share /livez, /readyz and /metrics on --http-addr.

The router's BGP speaker (GoBGP) runs in a supervised child process,
bgpfabric-speaker from beside this binary (or "bgpfabric node speaker" when
there is none; bgpfabric-node, which has no speaker of its own, needs it),
which dies with the node: a peer's message that
crashes it costs the speaker, not felix and the kernel routes; the router
starts a new one with graceful restart and holds down a peer that keeps
crashing it (docs/robustness.md; --bgp-speaker-process=false runs it in
this process). A minute after the node is first ready, the node and its
speaker give back the memory that only their start needed, and the node
again once it has been quiet for 30 s after a burst of datastore or route
changes, at most once per 10 minutes (docs/scale.md).

With --netns it programs that network namespace (a name under /run/netns or
a path such as /proc/PID/ns/net) while the process stays where it is; the
datastore is reached from the process's own namespace (a unix socket works
from anywhere). Without it, it programs the namespace it runs in, so
"ip netns exec NAME bgpfabric node" is the other way to run it in one.

On SIGTERM or SIGINT it stops and leaves routes, settings and ACLs in place,
so that a restart does not drop traffic (the router keeps its learned routes
when graceful restart is on, and peers keep this node's until it is back);
its status records are deleted.`,
		Args: cobra.NoArgs,
	}
	builds := make([]func(*nodeEnv) (func(context.Context) error, error), len(nodeComponents))
	for i, c := range nodeComponents {
		builds[i] = c.setup(cmd.Flags())
	}
	cmd.Flags().StringVar(&nodeName, "node-name", envOr("BGPFABRIC_NODE_NAME", nodeHostname()), "this node's name; env BGPFABRIC_NODE_NAME (default: the host name)")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:9099", `address for /livez, /readyz and /metrics ("" disables)`)
	cmd.Flags().DurationVar(&statusTTL, "status-ttl", datastore.DefaultStatusTTL, "how long the node's status records outlive a crashed node")
	if selfSpeaker != nil {
		cmd.AddCommand(selfSpeaker.command())
	}
	cmd.AddCommand(newNodeDrainCmd(g, true), newNodeDrainCmd(g, false)) // node_drain.go
	cmd.AddCommand(newNodeResetSessionCmd(g))                           // node_reset.go
	cmd.Flags().StringVar(&nsName, "netns", "", "network namespace to program: a name in /run/netns or a path (default: the process's own)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if nodeName == "" {
			return errors.New("--node-name is required (the host name is unknown)")
		}
		log, err := g.logger()
		if err != nil {
			return err
		}
		log = log.With("node", nodeName)
		ns := netns.None()
		if nsName != "" {
			if ns, err = openNetns(nsName); err != nil {
				return err
			}
			defer ns.Close()
		}
		ctx := cmd.Context()
		c, err := g.agentClient(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		// One lease for the node, granted in the background: a busy etcd
		// delays the status records, not the node.
		status, err := c.NewStatusWriter(ctx, datastore.StatusWriterConfig{TTL: statusTTL, Logger: log})
		if err != nil {
			return err
		}
		defer func() {
			if err := status.Close(); err != nil {
				log.Warn("closing the status writer", "error", err)
			}
		}()
		env := &nodeEnv{NodeName: nodeName, Client: c, Netns: ns, Log: log, Status: status, Observe: observe.New()}
		specs := nodeComponents
		runs := make([]func(context.Context) error, len(builds))
		for i, b := range builds {
			if runs[i], err = b(env); err != nil {
				return fmt.Errorf("%s: %w", nodeComponents[i].name, err)
			}
		}
		specs = append(slices.Clip(specs), nodeComponent{name: "log-severity"})
		runs = append(runs, func(ctx context.Context) error { return followLogSeverity(ctx, g, c, nodeName, log) })
		if httpAddr != "" {
			l, err := net.Listen("tcp", httpAddr)
			if err != nil {
				return fmt.Errorf("--http-addr: %w", err)
			}
			specs = append(slices.Clip(specs), nodeComponent{name: "http"})
			runs = append(runs, func(ctx context.Context) error { return env.Observe.ServeListener(ctx, l) })
		}
		specs = append(slices.Clip(specs), nodeComponent{name: "memtrim"})
		runs = append(runs, func(ctx context.Context) error {
			return trimAtRest(ctx, env.Observe.Ready, trimConfig{settle: trimSettle, quiet: trimQuiet, minGap: trimMinGap}, log)
		})
		log.Info("node agent running", "netns", nsName, "http", httpAddr)
		return runComponents(ctx, specs, runs)
	}
	return cmd
}

// trimSettle is how long the node waits, once it is ready, before it
// gives back the memory that only its start needed (internal/memtrim):
// long enough for its BGP sessions to come up and its routes to be
// exchanged and installed.
const trimSettle = time.Minute

// trimQuiet and trimMinGap pace the node's later trims: once its
// datastore changes and kernel routes (memtrim.Changed, marked by the
// syncers and the route tables) have been quiet for trimQuiet after a
// burst, it trims again, at most once per trimMinGap. At 300 nodes the
// fabric goes on converging for a minute or more after the start-up
// trim; what that faulted in is given back once it has settled.
const (
	trimQuiet  = 30 * time.Second
	trimMinGap = 10 * time.Minute
)

// trimConfig is when trimAtRest trims.
type trimConfig struct {
	// settle is the start-up trim's wait after the node is first ready;
	// quiet and minGap are memtrim.QuietConfig's Settle and MinGap.
	settle, quiet, minGap time.Duration
}

// trimAtRest trims the node's memory once, settle after the node is
// first ready, then again each time it has been quiet after a burst of
// changes (memtrim.WhenQuiet), until ctx ends. A failed trim is logged,
// never fatal.
func trimAtRest(ctx context.Context, ready func() error, cfg trimConfig, log *slog.Logger) error {
	res, err := memtrim.AfterReady(ctx, ready, 5*time.Second, cfg.settle)
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil:
		log.Warn("giving back start-up memory", "error", err)
	default:
		log.Info("gave back start-up memory", memtrim.LogKeyBinaryKiB, res.BinaryKiB)
	}
	// The start-up trim does not count against the gap: the first quiet
	// trim follows the convergence that goes on after it.
	memtrim.WhenQuiet(ctx, memtrim.QuietConfig{Settle: cfg.quiet, MinGap: cfg.minGap, Trim: func() {
		if res, err := memtrim.Trim(); err != nil {
			log.Warn("giving back memory after a burst of changes", "error", err)
		} else {
			log.Info("gave back memory after a burst of changes", memtrim.LogKeyBinaryKiB, res.BinaryKiB)
		}
	}})
	return nil
}

// runComponents runs every component until ctx ends or one of them fails,
// which stops the others; it returns when all have returned.
func runComponents(ctx context.Context, specs []nodeComponent, runs []func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i, run := range runs {
		wg.Go(func() {
			err := run(ctx)
			if err == nil && ctx.Err() == nil {
				err = errors.New("stopped unexpectedly")
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("%s: %w", specs[i].name, err)
				}
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	return first
}

// openNetns opens a network namespace by path or by name.
func openNetns(s string) (netns.NsHandle, error) {
	var h netns.NsHandle
	var err error
	if strings.Contains(s, "/") {
		h, err = netns.GetFromPath(s)
	} else {
		h, err = netns.GetFromName(s)
	}
	if err != nil {
		return netns.None(), fmt.Errorf("--netns %s: %w", s, err)
	}
	return h, nil
}

func nodeHostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}
