//go:build !nodeonly

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
	"github.com/bgpfabric/bgpfabric/sim/ui"
)

func init() { addCommand(newSimCmd) }

// simOptions are the flags the sim subcommands share.
type simOptions struct {
	file      string
	runID     string
	base      string
	binary    string
	nodeCmd   string
	rrCmd     string
	ready     string
	workloads string
	proxy     bool
	// kubeAPIServer, kubeControllers: binaries for topologies with
	// kubernetes.
	kubeAPIServer, kubeControllers string
}

func (s *simOptions) add(cmd *cobra.Command, agents bool) {
	f := cmd.Flags()
	f.StringVarP(&s.file, "file", "f", "", "topology file (YAML; see docs/topologies.md)")
	f.StringVar(&s.base, "state-dir", runstate.DefaultBase, "where runs keep their state, logs and etcd")
	if !agents {
		f.StringVar(&s.runID, "run", "", "run ID (default: the live run of --file)")
		return
	}
	f.StringVar(&s.binary, "binary", "", "bgpfabric binary for agents, datastore and CNI plugin (default: this one); node agents run bgpfabric-node from beside it when it is there")
	f.StringVar(&s.nodeCmd, "node-cmd", "", `command of a node's agent, placeholders {bin} {nodebin} {node} {datastore} {netns} {role} {rundir} (default "`+strings.Join(sim.DefaultNodeCommand, " ")+`")`)
	f.StringVar(&s.rrCmd, "reflector-cmd", "", `command of a reflector's agent (default "`+strings.Join(sim.DefaultReflectorCommand, " ")+`")`)
	f.StringVar(&s.ready, "ready", sim.ReadyStatus, "what convergence waits for: status (agents' status records and kernel routes) or process (agents running: for stand-in agents)")
	f.StringVar(&s.workloads, "workloads", "cni", "cni (wire workloads through the CNI plugin) or none")
	f.BoolVar(&s.proxy, "datastore-proxy", false, "connect the agents to etcd through etcd's gRPC proxy (docs/scale.md)")
	f.StringVar(&s.kubeAPIServer, "kube-apiserver", "", "kube-apiserver binary for topologies with kubernetes (default: $BGPFABRIC_KUBE_APISERVER, .cache/k8s/kube-apiserver of the repository, or beside --binary)")
	f.StringVar(&s.kubeControllers, "kube-controllers", "", "bgpfabric-kube-controllers binary for topologies with kubernetes (default: beside --binary)")
}

func (s *simOptions) options(g *globalOptions) (sim.Options, error) {
	log, err := g.logger()
	if err != nil {
		return sim.Options{}, err
	}
	o := sim.Options{Base: s.base, Binary: s.binary, Ready: s.ready, Workloads: s.workloads, DatastoreProxy: s.proxy, Logger: log, Progress: g.stdout,
		KubeAPIServer: s.kubeAPIServer, KubeControllers: s.kubeControllers}
	if o.Binary == "" {
		// Agents, datastore and CNI plugin are this very binary.
		if o.Binary, err = os.Executable(); err != nil {
			return sim.Options{}, err
		}
	}
	if s.nodeCmd != "" {
		o.NodeCommand = strings.Fields(s.nodeCmd)
	}
	if s.rrCmd != "" {
		o.ReflectorCommand = strings.Fields(s.rrCmd)
	}
	return o, nil
}

func (s *simOptions) topology() (*topology.Topology, error) {
	if s.file == "" {
		return nil, errors.New("-f FILE is required")
	}
	return topology.Load(s.file)
}

// runDir finds the run a command acts on: --run, or the one live run of
// --file.
func (s *simOptions) runDir() (string, error) {
	if s.runID != "" {
		return s.base + "/" + s.runID, nil
	}
	if s.file == "" {
		return "", errors.New("-f FILE or --run ID is required")
	}
	runs, err := sim.Runs(s.base, s.file)
	if err != nil {
		return "", err
	}
	var live []sim.RunInfo
	for _, r := range runs {
		if r.State.Live() {
			live = append(live, r)
		}
	}
	switch len(live) {
	case 0:
		return "", fmt.Errorf("no run of %s is up (bgpfabric sim up -f %s)", s.file, s.file)
	case 1:
		return live[0].Dir, nil
	}
	var ids []string
	for _, r := range live {
		ids = append(ids, r.State.RunID)
	}
	return "", fmt.Errorf("%d runs of %s are up (%s): pick one with --run", len(live), s.file, strings.Join(ids, ", "))
}

func newSimCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Boot a whole fabric in network namespaces from a topology file, check it, tear it down",
		Long: `sim boots a fabric on this machine: a network namespace per node, segment
and workload, veth links, an etcd on a unix socket in the run's directory, the
topology's resources, one agent process per node in its namespace, workloads
through the CNI plugin. Everything carries the run's ID and is removed by
"down", Ctrl-C, or the next "up" after a crash. See docs/topologies.md.`,
	}
	cmd.AddCommand(newSimRunCmd(g), newSimUpCmd(g), newSimStatusCmd(g), newSimCheckCmd(g), newSimDownCmd(g), newSimPlanCmd(g), newSimFaultCmd(g), newSimListenCmd())
	return cmd
}

// reportFiles are the report files that run and check write on request.
type reportFiles struct{ json, junit string }

func (o *reportFiles) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.json, "json", "", "write the report as JSON to this file")
	cmd.Flags().StringVar(&o.junit, "junit", "", "write the checks as JUnit XML to this file")
}

func (o *reportFiles) write(rep *sim.Report) error {
	var errs []error
	if o.json != "" {
		errs = append(errs, rep.WriteJSON(o.json))
	}
	if o.junit != "" {
		errs = append(errs, rep.WriteJUnit(o.junit))
	}
	return errors.Join(errs...)
}

// viewFlags are the flags of the web view (docs/sim-ui.md).
type viewFlags struct {
	addr        string
	allowRemote bool
}

func (v *viewFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&v.addr, "ui", "", "serve a live web view of the fabric on this address (host:port, loopback unless --ui-allow-remote; see docs/sim-ui.md)")
	cmd.Flags().BoolVar(&v.allowRemote, "ui-allow-remote", false, "let --ui listen on an address that is not loopback (the view has no authentication)")
}

// start serves the view of live when --ui is given; stop closes it.
func (v *viewFlags) start(g *globalOptions, live *ui.Live) (stop func(), err error) {
	if v.addr == "" {
		return func() {}, nil
	}
	log, err := g.logger()
	if err != nil {
		return nil, err
	}
	srv, err := ui.Listen(live, ui.ServerOptions{Addr: v.addr, AllowRemote: v.allowRemote, Logger: log})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(g.stdout, "web view: %s\n", srv.URL())
	return func() { srv.Close() }, nil
}

func newSimRunCmd(g *globalOptions) *cobra.Command {
	s := &simOptions{}
	var out reportFiles
	var view viewFlags
	var htmlFile string
	cmd := &cobra.Command{
		Use:   "run -f FILE [--json FILE] [--junit FILE] [--html FILE] [--ui ADDR]",
		Short: "Boot, wait for convergence, check, inject the faults, tear down; exit 0 only if every check passed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := s.topology()
			if err != nil {
				return err
			}
			o, err := s.options(g)
			if err != nil {
				return err
			}
			var live *ui.Live
			if view.addr != "" || htmlFile != "" {
				live = ui.NewLive(o.Logger)
				defer live.Close()
				o.Observer = live
			}
			stopView, err := view.start(g, live)
			if err != nil {
				return err
			}
			defer stopView()
			rep, err := sim.Run(cmd.Context(), topo, o)
			if rep == nil {
				return err
			}
			rep.WriteText(g.stdout)
			err = errors.Join(err, out.write(rep))
			if htmlFile != "" {
				err = errors.Join(err, ui.WriteHTMLFile(htmlFile, rep, live.Snapshot()))
			}
			if err != nil {
				return err
			}
			if !rep.OK() {
				return fmt.Errorf("%d checks failed (converged: %v)", rep.ChecksFailed, rep.Converged)
			}
			return nil
		},
	}
	s.add(cmd, true)
	out.flags(cmd)
	view.add(cmd)
	cmd.Flags().StringVar(&htmlFile, "html", "", "write a self-contained HTML report (graph, checks, faults, timeline, timings) to this file")
	return cmd
}

func newSimUpCmd(g *globalOptions) *cobra.Command {
	s := &simOptions{}
	var noWait bool
	var view viewFlags
	cmd := &cobra.Command{
		Use:   "up -f FILE",
		Short: "Boot a fabric and leave it running (etcd as a process of the run) until `sim down`",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := s.topology()
			if err != nil {
				return err
			}
			o, err := s.options(g)
			if err != nil {
				return err
			}
			o.Keep = true
			live := ui.NewLive(o.Logger)
			defer live.Close()
			stopView, err := view.start(g, live)
			if err != nil {
				return err
			}
			defer stopView()
			f, err := sim.Boot(cmd.Context(), topo, o)
			if err != nil {
				return err
			}
			defer f.Close()
			live.Booted(f)
			if !noWait {
				live.Phase("converge")
				if _, err := f.WaitConverged(cmd.Context()); err != nil {
					fmt.Fprintf(g.stdout, "warning: %v\n", err)
				}
			}
			if in := f.ImpairedInProcess(); len(in) > 0 {
				fmt.Fprintf(g.stdout, "warning: this kernel has no sch_netem: the impairments of %s were done in this process (NFQUEUE) and end as it exits; use sim run, or the Go API, to test under them\n", strings.Join(in, ", "))
			}
			live.Phase("up")
			fmt.Fprintf(g.stdout, "run %s is up: datastore %s, logs in %s/logs\n  bgpfabric sim status --run %s\n  bgpfabric sim down --run %s\n",
				f.RunID(), f.Datastore(), f.Dir(), f.RunID(), f.RunID())
			if view.addr != "" {
				// The run stays up after this command; the view lives
				// as long as it does.
				fmt.Fprintf(g.stdout, "serving the web view until interrupted (Ctrl-C stops the view, not the run)\n")
				<-cmd.Context().Done()
			}
			return nil
		},
	}
	s.add(cmd, true)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the agents are started, without waiting for convergence")
	view.add(cmd)
	return cmd
}

func newSimStatusCmd(g *globalOptions) *cobra.Command {
	s := &simOptions{}
	cmd := &cobra.Command{
		Use:   "status [-f FILE | --run ID]",
		Short: "List runs, or show one run's agents and sessions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if s.file == "" && s.runID == "" {
				runs, err := sim.Runs(s.base, "")
				tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "RUN\tFABRIC\tPHASE\tLIVE\tAGE\tTOPOLOGY")
				for _, r := range runs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", r.State.RunID, r.State.Fabric, r.State.Phase, r.State.Live(), time.Since(r.State.Created).Round(time.Second), r.State.Topology)
				}
				tw.Flush()
				return err
			}
			f, err := s.attach(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer f.Close()
			running, total := f.AgentsRunning()
			fmt.Fprintf(g.stdout, "run %s: agents running %d/%d, datastore %s\n", f.RunID(), running, total, f.Datastore())
			rep := f.NewReport(cmd.Context())
			rep.Converged, rep.Attached = true, true
			rep.WriteText(g.stdout)
			return nil
		},
	}
	s.add(cmd, false)
	return cmd
}

func (s *simOptions) attach(ctx context.Context, g *globalOptions) (*sim.Fabric, error) {
	dir, err := s.runDir()
	if err != nil {
		return nil, err
	}
	o, err := s.options(g)
	if err != nil {
		return nil, err
	}
	o.Progress = nil
	return sim.Attach(ctx, dir, o)
}

func newSimCheckCmd(g *globalOptions) *cobra.Command {
	s := &simOptions{}
	var out reportFiles
	cmd := &cobra.Command{
		Use:   "check [-f FILE | --run ID]",
		Short: "Run the topology's checks against a run that is up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := s.attach(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer f.Close()
			rep := f.NewReport(cmd.Context())
			rep.Converged, rep.Attached = true, true
			rep.AddChecks(f.Check(cmd.Context()))
			rep.WriteText(g.stdout)
			err = errors.Join(err, out.write(rep))
			if err == nil && !rep.OK() {
				err = fmt.Errorf("%d checks failed", rep.ChecksFailed)
			}
			return err
		},
	}
	s.add(cmd, false)
	out.flags(cmd)
	return cmd
}

func newSimDownCmd(g *globalOptions) *cobra.Command {
	s := &simOptions{}
	var all bool
	cmd := &cobra.Command{
		Use:   "down [-f FILE | --run ID | --all]",
		Short: "Tear down a run (and the leftovers of crashed runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var errs []error
			var dirs []string
			switch {
			case all:
				runs, err := sim.Runs(s.base, "")
				errs = append(errs, err)
				for _, r := range runs {
					dirs = append(dirs, r.Dir)
				}
			case s.file != "" || s.runID != "":
				dir, err := s.runDir()
				if err != nil {
					errs = append(errs, err)
				} else {
					dirs = append(dirs, dir)
				}
			}
			for _, d := range dirs {
				start := time.Now()
				if err := sim.DownRun(d, 0); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(g.stdout, "run %s down in %s\n", d[strings.LastIndexByte(d, '/')+1:], time.Since(start).Round(time.Millisecond))
			}
			cleaned, err := runstate.CleanupDead(s.base, runstate.DefaultGrace)
			errs = append(errs, err)
			for _, id := range cleaned {
				fmt.Fprintf(g.stdout, "removed leftovers of run %s\n", id)
			}
			return errors.Join(errs...)
		},
	}
	s.add(cmd, false)
	cmd.Flags().BoolVar(&all, "all", false, "tear down every run")
	return cmd
}

func newSimPlanCmd(g *globalOptions) *cobra.Command {
	s := &simOptions{}
	var slot int
	cmd := &cobra.Command{
		Use:   "plan -f FILE",
		Short: "Validate a topology and print the plan it expands to (no root needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := s.topology()
			if err != nil {
				return err
			}
			plan, err := topology.Expand(topo, topology.ExpandOptions{RunID: s.runID, Slot: slot})
			if err != nil {
				return err
			}
			return plan.Render(g.stdout)
		},
	}
	cmd.Flags().StringVarP(&s.file, "file", "f", "", "topology file")
	cmd.Flags().StringVar(&s.runID, "run", "", "run ID to name namespaces with (default 000000)")
	cmd.Flags().IntVar(&slot, "slot", 0, "address slot")
	return cmd
}

func newSimFaultCmd(g *globalOptions) *cobra.Command {
	s := &simOptions{}
	var fp topology.FaultPlan
	var segment, peer string
	var nodes, from []string
	var impair topology.Impairment
	cmd := &cobra.Command{
		Use:   "fault [-f FILE | --run ID] --action ACTION [--node NODE] [--segment S | --peer P] [--duration D]",
		Short: "Inject a fault into a run that is up, then wait for convergence and check",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := s.attach(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer f.Close()
			if fp.Action == topology.FaultSessionReset {
				fp.Peer = peer // the session's other end, not a link
			} else if fp.Node != "" {
				n := f.Plan.Node(fp.Node)
				if n == nil {
					return fmt.Errorf("no node %q", fp.Node)
				}
				var names []string
				for _, i := range n.Interfaces {
					names = append(names, i.Name)
					if (segment != "" && i.Segment == segment) || (peer != "" && i.PeerNode == peer) {
						fp.Interface = i.Name
					}
				}
				switch {
				case (segment != "" || peer != "") && fp.Interface == "":
					return fmt.Errorf("node %s has no interface on segment %q or link to %q (interfaces: %s)", fp.Node, segment, peer, strings.Join(names, ", "))
				case fp.Interface == "" && (fp.Action == topology.FaultLinkDown || fp.Action == topology.FaultLinkUp || fp.Action == topology.FaultImpair || fp.Action == topology.FaultFlap):
					if len(n.Interfaces) != 1 {
						return fmt.Errorf("node %s has %d interfaces (%s): say which with --segment or --peer", fp.Node, len(n.Interfaces), strings.Join(names, ", "))
					}
					fp.Interface = n.Interfaces[0].Name
				}
			}
			if fp.Action == topology.FaultImpair {
				if fp.Impair, err = topology.ParseImpairment(&impair); err != nil {
					return err
				}
			}
			if fp.Nodes, err = f.Plan.NodeSet(nodes); err != nil {
				return err
			}
			if fp.From, err = f.Plan.NodeSet(from); err != nil {
				return err
			}
			fp.Name = fp.Action
			fr, checks := f.Fault(cmd.Context(), fp)
			// The datastore may be down (a fault that failed to restore
			// it): the report's peer states must not wait for it forever.
			rctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			rep := f.NewReport(rctx)
			rep.Converged, rep.Attached = true, true
			rep.Faults = []sim.FaultResult{fr}
			rep.AddChecks(checks)
			rep.WriteText(g.stdout)
			if fr.Status != sim.Passed {
				return fmt.Errorf("fault %s: %s", fr.Name, fr.Message)
			}
			return nil
		},
	}
	s.add(cmd, false)
	cmd.Flags().StringVar(&fp.Action, "action", "", "kill-agent, restart-agent, link-down, link-up, stop-datastore, impair, partition, pause-agent, flap or session-reset")
	// The newer faults' fields (docs/topologies.md, "Faults and the fault
	// timeline").
	cmd.Flags().StringSliceVar(&nodes, "nodes", nil, "partition: the nodes (or groups) to cut off")
	cmd.Flags().StringSliceVar(&from, "from", nil, "partition: the nodes (or groups) to cut them off from")
	cmd.Flags().BoolVar(&fp.OneWay, "one-way", false, "partition: drop only what --nodes send to --from")
	cmd.Flags().IntVar(&fp.Count, "count", 0, "flap: how many times the link goes down and up")
	cmd.Flags().DurationVar(&fp.Interval, "interval", 0, "flap: how long it stays down, then up, each time")
	for _, fl := range []struct {
		p          *string
		name, help string
	}{
		{&impair.Delay, "delay", "impair: added delay, e.g. 100ms"}, {&impair.Jitter, "jitter", "impair: jitter of the delay"},
		{&impair.Distribution, "distribution", "impair: of the jitter: uniform or normal"},
		{&impair.Loss, "loss", "impair: random loss, e.g. 2%"}, {&impair.LossCorrelation, "loss-correlation", "impair: loss correlation"},
		{&impair.Duplicate, "duplicate", "impair: duplicated packets"}, {&impair.Reorder, "reorder", "impair: reordered packets (needs --delay)"},
		{&impair.Corrupt, "corrupt", "impair: corrupted packets"}, {&impair.Rate, "rate", "impair: rate limit, e.g. 10mbit"},
	} {
		cmd.Flags().StringVar(fl.p, fl.name, "", fl.help)
	}
	cmd.Flags().StringVar(&fp.Node, "node", "", "target node")
	cmd.Flags().StringVar(&segment, "segment", "", "link faults: the node's port on this segment")
	cmd.Flags().StringVar(&peer, "peer", "", "link faults: the node's link to this peer; session-reset: the session's other end")
	cmd.Flags().DurationVar(&fp.Duration, "duration", 0, "restore after this long (0: leave it)")
	return cmd
}

// newSimListenCmd is the TCP listener of a workload of a run that outlives
// the command that booted it (`sim up`): the sim starts it inside the
// workload's namespace, and `down` stops it with the run.
func newSimListenCmd() *cobra.Command {
	var ports []int
	cmd := &cobra.Command{
		Use:    "listen --port N...",
		Short:  "Accept and close TCP connections on ports (inside a workload of a kept run)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sim.ServeListeners(cmd.Context(), ports)
		},
	}
	cmd.Flags().IntSliceVar(&ports, "port", nil, "TCP port (repeatable)")
	return cmd
}
