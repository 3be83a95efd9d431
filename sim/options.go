package sim

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Readiness modes: what Boot waits for before it returns.
const (
	// ReadyStatus waits for the agents' status records (FelixStatus ready,
	// every expected BGP session Established) and for every node to have
	// a kernel route to every other node's IPAM blocks.
	ReadyStatus = "status"
	// ReadyProcess only waits for the agent processes to be running:
	// for stand-in agents that write no status.
	ReadyProcess = "process"
)

// Options configure a simulation. The zero value runs the real agents of
// the bgpfabric binary found as described at Binary.
type Options struct {
	// Base is where runs keep their state (default runstate.DefaultBase).
	Base string
	// Binary is the bgpfabric executable for agents, the datastore process
	// and the CNI plugin. Default: this process's executable if it is
	// bgpfabric, else "bgpfabric" from $PATH.
	Binary string
	// NodeBinary is the executable of the node agents ({nodebin} in
	// NodeCommand): it must exist when given. Default: NodeBinaryName
	// beside Binary when it is there, else Binary (its `node` command).
	NodeBinary string
	// DatastoreRelay gives every agent its own datastore endpoint,
	// relayed by this process, so that PartitionDatastore can cut a node
	// off from the datastore. It is on when the topology has such a
	// fault; a run that outlives this process (Keep) has none.
	DatastoreRelay bool
	// NodeCommand, ReflectorCommand start a node's and a reflector's agent.
	// Each word may hold the placeholders {bin}, {nodebin} (NodeBinary),
	// {node}, {datastore}, {netns}, {role} and {rundir}. Defaults:
	// DefaultNodeCommand and DefaultReflectorCommand.
	NodeCommand      []string
	ReflectorCommand []string
	// Ready is ReadyStatus (default) or ReadyProcess.
	Ready string
	// DatastoreProcess runs etcd as a process of the run (`bgpfabric
	// datastore serve` in a namespace of its own) instead of inside this
	// process; `sim up` needs it, since its etcd must outlive the command.
	DatastoreProcess bool
	// DatastoreProxy puts etcd's gRPC proxy (datastore.Proxy; `bgpfabric
	// datastore proxy` when the datastore is a process) between the
	// agents and etcd: the agents' identical watches reach etcd once
	// (docs/scale.md). The sim itself and the CNI plugin talk to etcd.
	DatastoreProxy bool
	// Workloads: "cni" (default: through the CNI plugin, via libcni) or
	// "none" (namespaces only, not wired).
	Workloads string
	// CNIParallel is how many nodes get their workloads wired at once
	// (default DefaultCNIParallel); a node's own workloads go one after
	// the other, as a kubelet's would.
	CNIParallel int
	// AgentWindow is how many agents may be started and not yet ready at
	// once: the next agent starts when an earlier one is ready (its
	// status record says so), so the boot goes as fast as the machine
	// takes it without burying etcd under agents that all sync at once.
	// Zero means DefaultAgentWindow per CPU.
	AgentWindow int
	// AgentNice is the nice value of the agents' processes, so that the
	// run's etcd (nice 0, in this process or its own) keeps its share of
	// the CPUs while hundreds of agents boot. Zero means
	// DefaultAgentNice; negative leaves them at the sim's.
	AgentNice int
	// KubeAPIServer is the kube-apiserver binary for a topology with
	// kubernetes; default: $BGPFABRIC_KUBE_APISERVER, .cache/k8s/ of the
	// repository around the working directory, or kube-apiserver beside
	// Binary. KubeControllers is the bgpfabric-kube-controllers binary;
	// default: beside Binary.
	KubeAPIServer, KubeControllers string
	// Keep leaves the run up when the Fabric is closed (`sim up`).
	Keep bool
	// Grace is how long agents get between SIGTERM and SIGKILL.
	Grace time.Duration
	// Logger receives the sim's own logs; nil discards.
	Logger *slog.Logger
	// Progress, if set, receives one line per boot milestone.
	Progress io.Writer
	// Observer, if set, follows Run (see Observer).
	Observer Observer
}

// DefaultCNIParallel: the plugin's runs wait mostly on etcd round trips
// and on process start, so more of them at once than there are CPUs pays
// (docs/benchmarks.md, "Simulator").
const DefaultCNIParallel = 32

// Agent admission defaults (see Options.AgentWindow, AgentNice).
const (
	DefaultAgentWindow = 8
	DefaultAgentNice   = 5
	// agentReadyTimeout is how long an agent may take to be ready
	// before the boot stops waiting for it (it counts as ready for the
	// admission; convergence still waits for it).
	agentReadyTimeout = 60 * time.Second
)

// Default agent commands.
var (
	// The router's control socket goes into the run's directory, where
	// another run's node of the same name cannot replace it.
	DefaultNodeCommand      = []string{"{nodebin}", "node", "--node-name", "{node}", "--datastore", "{datastore}", "--control-dir", "{rundir}"}
	DefaultReflectorCommand = []string{"{bin}", "reflector", "--node", "{node}", "--datastore", "{datastore}", "--control-socket", "{rundir}/reflector.{node}.sock"}
)

func (o Options) withDefaults() (Options, error) {
	if o.Base == "" {
		o.Base = runstate.DefaultBase
	}
	if o.Ready == "" {
		o.Ready = ReadyStatus
	}
	if o.Ready != ReadyStatus && o.Ready != ReadyProcess {
		return o, fmt.Errorf("readiness %q: want %s or %s", o.Ready, ReadyStatus, ReadyProcess)
	}
	if o.Keep {
		// The run outlives this process: so must its etcd.
		o.DatastoreProcess = true
	}
	if o.Workloads == "" {
		o.Workloads = "cni"
	}
	if o.CNIParallel <= 0 {
		o.CNIParallel = DefaultCNIParallel
	}
	if o.AgentWindow <= 0 {
		o.AgentWindow = DefaultAgentWindow * runtime.GOMAXPROCS(0)
	}
	if o.AgentNice == 0 {
		o.AgentNice = DefaultAgentNice
	}
	if o.Grace == 0 {
		o.Grace = runstate.DefaultGrace
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.NodeCommand == nil {
		o.NodeCommand = DefaultNodeCommand
	}
	if o.ReflectorCommand == nil {
		o.ReflectorCommand = DefaultReflectorCommand
	}
	if o.Binary == "" {
		o.Binary = findBinary()
	}
	nodeBin, err := o.resolveNodeBinary()
	if err != nil {
		return o, err
	}
	if err := o.sameBuild(nodeBin); err != nil {
		return o, err
	}
	o.NodeBinary = nodeBin
	return o, nil
}

func findBinary() string {
	if exe, err := os.Executable(); err == nil && strings.HasPrefix(filepath.Base(exe), "bgpfabric") && !strings.HasSuffix(exe, ".test") {
		return exe
	}
	if p, err := exec.LookPath("bgpfabric"); err == nil {
		return p
	}
	return "bgpfabric"
}

// expand fills the placeholders of a command template.
func expand(tmpl []string, vars map[string]string) []string {
	out := make([]string, len(tmpl))
	for i, w := range tmpl {
		for k, v := range vars {
			w = strings.ReplaceAll(w, "{"+k+"}", v)
		}
		out[i] = w
	}
	return out
}

// agentCommand is the command line of a node's agent.
func (o Options) agentCommand(n *topology.NodePlan, datastore, rundir string) []string {
	tmpl := o.NodeCommand
	if n.Agent == topology.AgentReflector {
		tmpl = o.ReflectorCommand
	}
	return expand(tmpl, map[string]string{
		"bin": o.Binary, "nodebin": o.NodeBinary, "node": n.Name, "datastore": datastore, "netns": n.Netns, "role": n.Role, "rundir": rundir,
	})
}
