package cni

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/bgpfabric/bgpfabric/api"
)

// Orchestrator names written into WorkloadEndpoints.
const (
	OrchestratorK8s = "k8s" // CNI_ARGS carry K8S_POD_NAME
	OrchestratorCNI = "cni" // any other runtime
)

// HostIfPrefix starts the name of every host-side veth the plugin creates.
const HostIfPrefix = "bf"

// ProfilePrefix starts the name of a namespace's profile: "ns.<namespace>".
const ProfilePrefix = "ns."

// workload identifies one attachment: who it is for and the names the
// plugin derives from that, deterministically.
type workload struct {
	node         string
	namespace    string
	name         string // pod name or container ID
	orchestrator string
	containerID  string
	ifName       string // inside the container
	network      string

	hostIf  string // host side of the veth
	wepName string
	handle  string
	profile string
	labels  map[string]string
}

// k8sArgs are the CNI_ARGS keys that Kubernetes runtimes pass.
type k8sArgs struct {
	types.CommonArgs
	K8S_POD_NAMESPACE          types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_NAME               types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_UID                types.UnmarshallableString //nolint:revive // CNI_ARGS key
}

// nonName is what may not appear in a name part.
var nonName = regexp.MustCompile(`[^a-z0-9.-]+`)

// newWorkload derives the attachment's identity from the configuration,
// container ID, interface name and CNI_ARGS.
func newWorkload(conf *NetConf, containerID, ifName, cniArgs string) (*workload, error) {
	var ka k8sArgs
	ka.IgnoreUnknown = true
	if err := types.LoadArgs(cniArgs, &ka); err != nil {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_ARGS: "+err.Error(), "")
	}
	w := &workload{
		node: conf.NodeName, containerID: containerID, ifName: ifName, network: conf.Name,
		namespace: string(ka.K8S_POD_NAMESPACE), name: string(ka.K8S_POD_NAME), orchestrator: OrchestratorK8s,
	}
	if w.namespace == "" {
		w.namespace = "default"
	}
	if w.name == "" {
		w.name, w.orchestrator = sanitize(containerID), OrchestratorCNI
	}
	w.handle = HandleFor(conf.Name, containerID, ifName)
	w.hostIf = HostIfName(w.namespace, w.name, ifName)
	w.wepName = api.WorkloadEndpointName(w.node, w.orchestrator, w.name, ifName)
	w.profile = ProfilePrefix + w.namespace
	w.labels = map[string]string{}
	for _, l := range conf.Args.CNI.Labels {
		w.labels[l.Key] = l.Value
	}
	maps.Copy(w.labels, conf.RuntimeConfig.Labels)
	return w, nil
}

// sanitize turns a container ID into a name part: lower case, with
// anything but letters, digits, '.' and '-' replaced by '-'.
func sanitize(s string) string {
	return strings.Trim(nonName.ReplaceAllString(strings.ToLower(s), "-"), "-.")
}

// HandleFor is the IPAM handle of an attachment: network, container ID
// and interface joined by ':' (which none of them may contain).
func HandleFor(network, containerID, ifName string) string {
	return network + ":" + containerID + ":" + ifName
}

// parseHandle splits a handle made by HandleFor.
func parseHandle(h string) (network, containerID, ifName string, ok bool) {
	parts := strings.Split(h, ":")
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// HostIfName is the host-side veth name of a workload: "bf" and the first
// 11 hex digits of the SHA-1 of "<namespace>.<workload>" (Calico's scheme
// with its "cali" prefix), plus "." and the interface name when that is
// not eth0, so that a pod's second network gets its own veth.
func HostIfName(namespace, workload, ifName string) string {
	key := namespace + "." + workload
	if ifName != "eth0" {
		key += "." + ifName
	}
	sum := sha1.Sum([]byte(key))
	return HostIfPrefix + hex.EncodeToString(sum[:])[:11]
}

// String renders the workload for logs and errors.
func (w *workload) String() string {
	return fmt.Sprintf("%s/%s (container %s, %s)", w.namespace, w.name, w.containerID, w.ifName)
}
