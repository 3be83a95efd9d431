//go:build !nodeonly

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/bfd"
	"github.com/bgpfabric/bgpfabric/internal/observe"
	"github.com/bgpfabric/bgpfabric/peering"
	"github.com/bgpfabric/bgpfabric/reflector"
	rrfabric "github.com/bgpfabric/bgpfabric/reflector/fabric"
)

func init() { addCommand(newReflectorCmd) }

// reflectorOptions are the flags of `bgpfabric reflector`.
type reflectorOptions struct {
	configFile     string
	node           string
	listen         []string
	httpAddr       string
	controlSocket  string
	shutdownWait   time.Duration
	restarting     bool
	restartMarker  string
	secretsDir     string
	statusInterval time.Duration
	memoryLimit    string
	gcPercent      int
	programFIB     bool
	fibProtocol    uint8
	watchConfig    bool           // reflector_reload.go
	watchInterval  time.Duration  // reflector_reload.go
	monitor        monitorOptions // BMP and MRT (reflector_monitor.go)
}

func newReflectorCmd(g *globalOptions) *cobra.Command {
	cmd, _ := reflectorCommand(g)
	return cmd
}

// reflectorCommand is newReflectorCmd and the options its flags set.
func reflectorCommand(g *globalOptions) (*cobra.Command, *reflectorOptions) {
	o := &reflectorOptions{}
	cmd := &cobra.Command{
		Use:   "reflector [--config FILE | --node NAME]",
		Short: "Run a BGP route reflector",
		Long: `Reflector runs bgpfabric's route-reflector engine. Its configuration comes
from a file (--config: a dedicated reflector without the datastore) or from the
datastore (this node's Node must have spec.bgp.routeReflectorClusterID; its
neighbours are computed from BGPPeers like every node's, and follow every
change without resetting unaffected sessions). It programs the kernel's routing
table only when told to (--program-fib, or programFIB in the file): then its
best paths are installed with protocol --fib-protocol (81, the node agent's
router's, by default) and removed when it stops.

Signals: SIGTERM or SIGINT re-advertises every route with the RFC 8326
GRACEFUL_SHUTDOWN community, waits --shutdown-wait, then closes every session
with a Cease. SIGUSR2 stops for a graceful restart (RFC 4724): sessions are
closed without a NOTIFICATION so that clients keep the routes, and
--restart-marker is written; the next start finding a fresh marker (or given
--restarting) defers its advertisements until its neighbours have re-sent
their routes. SIGHUP reloads --config (also on change with --watch-config):
added neighbours start, removed ones get a Cease (6/3), changed ones are
reset only when a setting that needs it changed; an invalid file is refused
whole.

--http-addr serves /metrics (Prometheus), /livez and /readyz;
--control-socket, a unix socket, POST /sessions/reset?peer=ADDR, which resets
that neighbour's session (Cease, Administrative Reset), GET /mrt/dump, an MRT
snapshot of the RIB, and what "bgpfabric reflector show" asks for.
--bmp-collector streams to BMP collectors, --mrt-* write MRT snapshots and
update logs. See docs/reflector.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runReflector(cmd.Context(), g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.configFile, "config", "", "configuration file (YAML); without it, the configuration comes from the datastore")
	f.StringVar(&o.node, "node", envOr("BGPFABRIC_NODE", hostname()), "this node's name in the datastore; env BGPFABRIC_NODE")
	f.StringSliceVar(&o.listen, "listen", nil, "listen addresses host:port (datastore mode; default: the node's addresses on its listen port)")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:9180", `address for /metrics, /livez and /readyz ("" disables)`)
	f.StringVar(&o.controlSocket, "control-socket", "", `unix socket for POST /sessions/reset?peer=ADDR (a session reset, Cease 6/4) and "reflector show"; "" disables`)
	f.DurationVar(&o.shutdownWait, "shutdown-wait", 5*time.Second, "time between the graceful-shutdown re-advertisement and closing the sessions")
	f.BoolVar(&o.restarting, "restarting", false, "start as a restarting speaker (RFC 4724)")
	f.StringVar(&o.restartMarker, "restart-marker", "", "file that SIGUSR2 writes and a start within 2 minutes takes as --restarting")
	f.StringVar(&o.secretsDir, "secrets-dir", "", "directory of BGPPeer passwords: DIR/<secret name>/<key>")
	f.DurationVar(&o.statusInterval, "status-interval", 10*time.Second, "how often BGPStatus is rebuilt; written only on change, prefix counts about once a minute (datastore mode)")
	f.BoolVar(&o.programFIB, "program-fib", false, "install the best paths into the kernel's main table (ECMP over equal paths); removed on a clean stop")
	f.Uint8Var(&o.fibProtocol, "fib-protocol", 0, "route protocol number of --program-fib's routes (0: 81, the node agent's router's; use another where the node agent runs too)")
	f.StringVar(&o.memoryLimit, "memory-limit", "", `soft limit of the Go runtime's memory, e.g. 512MiB or 2GiB (debug.SetMemoryLimit); "" keeps GOMEMLIMIT or none`)
	f.IntVar(&o.gcPercent, "gc-percent", defaultReflectorGCPercent, "heap growth between garbage collections, in percent of live data (debug.SetGCPercent); GOGC in the environment overrides the default")
	addReloadFlags(f, o)
	cmd.AddCommand(newReflectorShowCmd(g)) // reflector_show.go
	o.monitor.flags(f)
	return cmd, o
}

// checkFIB validates the kernel FIB flags.
func (o *reflectorOptions) checkFIB() error {
	if o.fibProtocol != 0 && o.fibProtocol <= 4 {
		return fmt.Errorf("--fib-protocol: %d is the kernel's or an operator's (want 5-255)", o.fibProtocol)
	}
	return nil
}

// applyFIB applies the kernel FIB flags to the engine's configuration, in
// either mode: --program-fib turns it on (a file's programFIB: true stays
// on), --fib-protocol overrides the file's protocol.
func (o *reflectorOptions) applyFIB(c *reflector.Config) {
	c.ProgramFIB = c.ProgramFIB || o.programFIB
	if o.fibProtocol != 0 {
		c.FIB.Protocol = o.fibProtocol
	}
}

// engineConfig is what the command sets on the engine's configuration, in
// either mode (from the file, or from the datastore's controller).
func (o *reflectorOptions) engineConfig(log *slog.Logger, restarting bool) func(*reflector.Config) {
	return func(c *reflector.Config) {
		c.Logger = log
		c.Restarting = restarting
		c.BFD = func() (reflector.BFDServer, error) {
			srv, err := bfd.NewServer(bfd.ServerConfig{Logger: log.With("component", "bfd")})
			if err != nil {
				return nil, err
			}
			return srv, nil
		}
		o.applyFIB(c)
		o.monitor.apply(c)
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// engine is the running reflector as the command sees it, whichever mode.
type engine interface {
	Reflector() *reflector.Reflector // nil until ready
}

type fileEngine struct{ r *reflector.Reflector }

func (f fileEngine) Reflector() *reflector.Reflector { return f.r }

// defaultReflectorGCPercent is the reflector's GOGC: half Go's default.
// At 1M paths it cut peak RSS from 143 to 123 MiB (1.44x to 1.24x BIRD's)
// for no measurable time, and with 5,000 clients from 439 to 344 MiB for
// 5% more convergence time (docs/reflector.md, Memory).
const defaultReflectorGCPercent = 50

func runReflector(ctx context.Context, g *globalOptions, o *reflectorOptions) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	if o.gcPercent != defaultReflectorGCPercent || os.Getenv("GOGC") == "" {
		debug.SetGCPercent(o.gcPercent)
	}
	if o.memoryLimit != "" {
		n, err := parseByteSize(o.memoryLimit)
		if err != nil {
			return fmt.Errorf("--memory-limit: %w", err)
		}
		debug.SetMemoryLimit(n)
	}
	restarting := o.restarting || freshMarker(o.restartMarker, log)

	// The reflector runs on its own context: a SIGTERM (ctx) starts the
	// graceful shutdown, which ends by cancelling runCtx.
	runCtx, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stop(nil)
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)

	var eng engine
	var run func() error
	var ready func() bool
	if err := o.checkFIB(); err != nil {
		return err
	}
	if err := o.checkReload(); err != nil {
		return err
	}
	if err := o.monitor.check(); err != nil {
		return err
	}
	engineCfg := o.engineConfig(log, restarting)
	if o.configFile != "" {
		cfg, err := reflector.LoadConfigFile(o.configFile)
		if err != nil {
			return err
		}
		engineCfg(&cfg)
		r, err := reflector.New(cfg)
		if err != nil {
			return err
		}
		eng = fileEngine{r}
		run = func() error { return r.Run(runCtx) }
		ready = func() bool {
			select {
			case <-r.Ready():
				return true
			default:
				return false
			}
		}
	} else {
		if o.node == "" {
			return errors.New("--node: no node name (and no hostname)")
		}
		client, err := g.agentClient(ctx)
		if err != nil {
			return err
		}
		defer client.Close()
		// The log level follows BGPConfiguration logSeverity (loglevel.go);
		// stopped and waited for before the client closes.
		sevCtx, stopSev := context.WithCancel(runCtx)
		sevDone := make(chan struct{})
		go func() {
			defer close(sevDone)
			if err := followLogSeverity(sevCtx, g, client, o.node, log); err != nil && sevCtx.Err() == nil {
				log.Warn("following BGPConfiguration logSeverity stopped", "err", err)
			}
		}()
		defer func() { stopSev(); <-sevDone }()
		ctrl, err := rrfabric.New(rrfabric.Config{
			Client: client, Node: o.node, ListenAddrs: o.listen, Secrets: secretsFromDir(o.secretsDir),
			StatusInterval: o.statusInterval, Engine: engineCfg, Logger: log,
		})
		if err != nil {
			return err
		}
		eng = ctrl
		run = func() error { return ctrl.Run(runCtx) }
		ready = func() bool {
			select {
			case <-ctrl.Ready():
				return true
			default:
				return false
			}
		}
	}

	eng, stopReload := startReload(runCtx, o, eng, engineCfg, log) // SIGHUP, --watch-config
	defer stopReload()
	var shuttingDown atomic.Bool
	if o.httpAddr != "" {
		httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
		defer stopHTTP()
		err := serveHTTP(httpCtx, o.httpAddr, eng, func() error {
			switch {
			case shuttingDown.Load():
				return errors.New("shutting down")
			case !ready():
				return errors.New("not configured or not listening yet")
			}
			return nil
		}, log)
		if err != nil {
			return err
		}
	}

	if o.controlSocket != "" {
		ctlCtx, stopCtl := context.WithCancel(context.WithoutCancel(ctx))
		defer stopCtl()
		if err := serveReflectorControl(ctlCtx, o.controlSocket, eng, log); err != nil {
			return err
		}
	}

	done := make(chan error, 1)
	go func() { done <- run() }()
	select {
	case err := <-done:
		return err
	case <-usr2:
		log.Info("SIGUSR2: stopping for a graceful restart; sessions close without NOTIFICATION")
		shuttingDown.Store(true)
		writeMarker(o.restartMarker, log)
		stop(reflector.ErrGracefulRestart)
	case <-ctx.Done():
		shuttingDown.Store(true)
		gracefulShutdown(eng, o.shutdownWait, done, log)
		stop(nil)
	}
	return <-done
}

// gracefulShutdown re-advertises with GRACEFUL_SHUTDOWN and waits.
func gracefulShutdown(eng engine, wait time.Duration, done <-chan error, log *slog.Logger) {
	r := eng.Reflector()
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := r.GracefulShutdown(ctx)
	if err != nil {
		log.Warn("graceful shutdown", "err", err)
		return
	}
	log.Info("graceful shutdown: routes re-advertised with GRACEFUL_SHUTDOWN (65535:0); closing after the wait",
		"sessions", n, "wait", wait)
	select {
	case <-time.After(wait):
	case <-done: // the reflector stopped by itself
	}
}

// serveHTTP serves /metrics, /livez and /readyz (internal/observe, as
// `bgpfabric node` does) until ctx ends.
func serveHTTP(ctx context.Context, addr string, eng engine, ready func() error, log *slog.Logger) error {
	obs := observe.New()
	obs.AddLiveness("reflector", func() error { return nil })
	obs.AddReadiness("reflector", ready)
	obs.Registry().MustRegister(lazyCollector{eng})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--http-addr: %w", err)
	}
	go func() {
		if err := obs.ServeListener(ctx, l); err != nil {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("serving metrics and health", "addr", l.Addr().String())
	return nil
}

// lazyCollector collects the reflector's metrics once it exists. It
// describes nothing up front (an unchecked collector), since the
// reflector is created only when its configuration is known.
type lazyCollector struct{ eng engine }

func (lazyCollector) Describe(chan<- *prometheus.Desc) {}

func (c lazyCollector) Collect(ch chan<- prometheus.Metric) {
	if r := c.eng.Reflector(); r != nil {
		r.Collector().Collect(ch)
	}
	if m, ok := c.eng.(prometheus.Collector); ok { // reloadingEngine
		m.Collect(ch)
	}
}

// secretsFromDir reads BGPPeer passwords from DIR/<name>/<key>.
func secretsFromDir(dir string) rrfabric.SecretReader {
	if dir == "" {
		return nil
	}
	return func(ref peering.SecretRef) (string, error) {
		if strings.ContainsAny(ref.Name+ref.Key, "/\\") || ref.Name == ".." || ref.Key == ".." {
			return "", fmt.Errorf("invalid secret reference %s/%s", ref.Name, ref.Key)
		}
		b, err := os.ReadFile(filepath.Join(dir, ref.Name, ref.Key))
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
}

// markerMaxAge is how recent a restart marker must be: the restart time
// we advertise (120 s), after which peers have dropped our routes anyway.
const markerMaxAge = 2 * time.Minute

func freshMarker(path string, log *slog.Logger) bool {
	if path == "" {
		return false
	}
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	os.Remove(path)
	if time.Since(fi.ModTime()) > markerMaxAge {
		log.Info("restart marker too old; starting normally", "marker", path)
		return false
	}
	log.Info("restart marker found: starting as a restarting speaker", "marker", path)
	return true
}

func writeMarker(path string, log *slog.Logger) {
	if path == "" {
		return
	}
	if err := os.WriteFile(path, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		log.Warn("writing restart marker", "marker", path, "err", err)
	}
}

// parseByteSize parses a size in bytes with an optional binary or decimal
// unit: 1073741824, 512MiB, 2GiB, 500MB.
func parseByteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if v, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a positive size such as 512MiB", s)
	}
	return n * mult, nil
}
