//go:build kube

// kube-controllers links client-go, which doubles the binary and adds about
// 25 MiB to the memory of every process of it (its packages' start-up
// work), node agents included. It is built only into
// bgpfabric-kube-controllers (`go build -tags kube`, make build), as Calico
// ships calico-kube-controllers apart (docs/architecture.md).

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/bgpfabric/bgpfabric/kubecontrollers"
)

func init() {
	addCommand(newKubeControllersCmd)
	binaryCommands[kubeControllersBinary] = "kube-controllers"
}

// kubeControllersBinary is the binary built with the kube tag: named so,
// it runs kube-controllers without the command's name.
const kubeControllersBinary = "bgpfabric-kube-controllers"

// klogOnce: client-go logs through klog, whose logger is process-wide
// and read without a lock by client-go's goroutines, so it is set once,
// before any client exists.
var klogOnce sync.Once

// setKlogLogger sends client-go's log lines to log, the first time only.
func setKlogLogger(log *slog.Logger) {
	klogOnce.Do(func() { klog.SetSlogLogger(log) })
}

func newKubeControllersCmd(g *globalOptions) *cobra.Command {
	var (
		kubeconfig  string
		leaderElect bool
		lc          kubecontrollers.LeaderConfig
		nodeGrace   time.Duration
		gcInterval  time.Duration
		leakGrace   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "kube-controllers [--kubeconfig FILE]",
		Short: "Keep the datastore in step with a Kubernetes cluster",
		Long: `Kube-controllers watches a Kubernetes API server and writes into the
datastore: NetworkPolicies converted into bgpfabric NetworkPolicies,
Namespaces as the profiles ns.<namespace> with their labels, Pods' labels and
named ports onto their WorkloadEndpoints, and Nodes' labels onto bgpfabric
Nodes (docs/kubernetes.md). Without --kubeconfig it uses the in-cluster
configuration of its pod. With --leader-elect (the default) only the
replica that holds the Lease works. It runs until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			setKlogLogger(log)
			var rc *rest.Config
			if kubeconfig != "" {
				rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
			} else {
				rc, err = rest.InClusterConfig()
			}
			if err != nil {
				return fmt.Errorf("kubernetes client configuration: %w", err)
			}
			kube, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return fmt.Errorf("kubernetes client: %w", err)
			}
			ctx := cmd.Context()
			ds, err := g.agentClient(ctx)
			if err != nil {
				return err
			}
			defer ds.Close()
			if lc.Identity == "" {
				lc.Identity, _ = os.Hostname()
			}
			c, err := kubecontrollers.New(kubecontrollers.Config{Kube: kube, Datastore: ds, Logger: log, NodeGracePeriod: nodeGrace, Instance: lc.Identity,
				IPAMGCInterval: gcInterval, IPAMLeakGracePeriod: leakGrace})
			if err != nil {
				return err
			}
			if !leaderElect {
				err = c.Run(ctx)
			} else {
				err = kubecontrollers.RunLeader(ctx, kube, lc, log, c.Run)
			}
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file of the API server (default: the pod's in-cluster configuration)")
	f.BoolVar(&leaderElect, "leader-elect", true, "work only while holding the Lease, so that replicas can run side by side")
	f.StringVar(&lc.Namespace, "lease-namespace", "kube-system", "namespace of the Lease")
	f.StringVar(&lc.Name, "lease-name", "bgpfabric-kube-controllers", "name of the Lease")
	f.StringVar(&lc.Identity, "identity", "", "this replica's name in the Lease (default: the host name)")
	f.DurationVar(&nodeGrace, "node-grace-period", kubecontrollers.DefaultNodeGracePeriod,
		"how long a Kubernetes Node must stay deleted before its bgpfabric Node is deleted and its IPAM blocks released")
	f.DurationVar(&gcInterval, "ipam-gc-interval", kubecontrollers.DefaultIPAMGCInterval,
		"how often to look for addresses leaked by pods gone without a CNI DEL (a negative value turns it off)")
	f.DurationVar(&leakGrace, "ipam-leak-grace-period", kubecontrollers.DefaultIPAMLeakGracePeriod,
		"how long an address must have been leaked, at two checks at least, before it is released")
	return cmd
}
