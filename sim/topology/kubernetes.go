package topology

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/bgpfabric/bgpfabric/kubecontrollers/k8slabels"
)

// Kubernetes runs a Kubernetes control plane beside the fabric: a real
// kube-apiserver (with its own etcd) and bgpfabric-kube-controllers; every
// compute node is registered as a Node, every workload is created as a Pod
// (its status set by the sim, standing in for a kubelet) and attached by
// the CNI plugin reading it from the API server; Resources are applied
// through the API server (docs/topologies.md, "Kubernetes").
type Kubernetes struct {
	Enabled bool `yaml:"enabled"`
	// Controllers is how many kube-controllers replicas run (leader
	// election picks one); default 1, at most MaxKubeControllers.
	Controllers int `yaml:"controllers"`
	// Resources are Kubernetes manifests (Namespace, NetworkPolicy),
	// applied through the API server after the Pods are created.
	Resources []yaml.Node `yaml:"resources"`
}

// MaxKubeControllers bounds Kubernetes.Controllers.
const MaxKubeControllers = 3

// KubernetesPlan is the Kubernetes part of a plan.
type KubernetesPlan struct {
	Controllers int
	// Namespaces are the workloads' namespaces and those the resources
	// name, created before the Pods (sorted).
	Namespaces []string
	// Resources are the manifests, in the file's order.
	Resources []KubeResource
}

// KubeResource is one manifest of kubernetes.resources.
type KubeResource struct {
	APIVersion, Kind, Namespace, Name string
	// JSON is the manifest as the API server takes it.
	JSON []byte
}

// Kinds kubernetes.resources may hold: apiVersion and kind, and whether
// the kind is namespaced.
var kubeKinds = map[[2]string]bool{
	{"v1", "Namespace"}:                       false,
	{"networking.k8s.io/v1", "NetworkPolicy"}: true,
}

// Path is the API path of the collection the resource is created in.
func (r KubeResource) Path() string {
	group := "/api/v1"
	if r.APIVersion != "v1" {
		group = "/apis/" + r.APIVersion
	}
	plural := map[string]string{"Namespace": "namespaces", "NetworkPolicy": "networkpolicies"}[r.Kind]
	if r.Namespace != "" {
		return group + "/namespaces/" + r.Namespace + "/" + plural
	}
	return group + "/" + plural
}

var dnsSubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// kubernetes validates the kubernetes section and plans it.
func (e *expander) kubernetes() {
	k := e.t.Kubernetes
	if k == nil {
		return
	}
	p := path{"kubernetes"}
	if !k.Enabled {
		if k.Controllers != 0 || len(k.Resources) > 0 {
			e.c.add(p.key("enabled"), "must be true when controllers or resources are given")
		}
		return
	}
	kp := &KubernetesPlan{Controllers: k.Controllers}
	switch {
	case k.Controllers == 0:
		kp.Controllers = 1
	case k.Controllers < 0 || k.Controllers > MaxKubeControllers:
		e.c.add(p.key("controllers"), "must be from 1 to %d (got %d)", MaxKubeControllers, k.Controllers)
	}
	namespaces := map[string]bool{}
	for _, w := range e.p.Workloads {
		namespaces[w.Namespace] = true
	}
	// Workloads become Pods (their namespaces are DNS labels already):
	// their own labels must be pod labels that reach the endpoint
	// (k8slabels.Pod drops the others).
	for gi, g := range e.t.Nodes {
		for wi, w := range g.Workloads {
			wp := path{"nodes", gi, "workloads", wi}
			for _, key := range slices.Sorted(maps.Keys(w.Labels)) {
				if l, _ := k8slabels.Pod(map[string]string{key: w.Labels[key]}, ""); len(l) == 0 {
					e.c.add(wp.key("labels").key(key), "is not a pod label that reaches the endpoint (an invalid key or value, or a reserved prefix: pcns., bgpfabric.io/)")
				}
			}
		}
	}
	seen := map[string]bool{}
	for i := range k.Resources {
		rp := path{"kubernetes", "resources", i}
		n := &k.Resources[i]
		if n.Kind != yaml.MappingNode {
			e.c.add(rp, "must be a Kubernetes manifest: a mapping with apiVersion, kind, metadata")
			continue
		}
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			e.c.add(rp, "%v", err)
			continue
		}
		api, _ := m["apiVersion"].(string)
		kind, _ := m["kind"].(string)
		namespaced, ok := kubeKinds[[2]string{api, kind}]
		if !ok {
			e.c.add(rp.key("kind"), "%s %q is not supported: want v1 Namespace or networking.k8s.io/v1 NetworkPolicy", api, kind)
			continue
		}
		meta, _ := m["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		if name == "" || len(name) > 253 || !dnsSubdomainRE.MatchString(name) {
			e.c.add(rp.key("metadata").key("name"), "must be a lower-case DNS subdomain (got %q)", name)
			continue
		}
		ns, _ := meta["namespace"].(string)
		switch {
		case !namespaced && ns != "":
			e.c.add(rp.key("metadata").key("namespace"), "a %s is not namespaced", kind)
			continue
		case namespaced && ns == "":
			ns = "default"
			meta["namespace"] = ns
		}
		if namespaced {
			if len(ns) > 63 || !dnsLabelRE.MatchString(ns) {
				e.c.add(rp.key("metadata").key("namespace"), "must be a lower-case DNS label (got %q)", ns)
				continue
			}
			namespaces[ns] = true
		} else {
			namespaces[name] = false // created from the manifest, with its labels
		}
		id := kind + " " + ns + "/" + name
		if seen[id] {
			e.c.add(rp, "%s is given twice", id)
			continue
		}
		seen[id] = true
		data, err := json.Marshal(m)
		if err != nil {
			e.c.add(rp, "cannot be written as JSON: %v", err)
			continue
		}
		kp.Resources = append(kp.Resources, KubeResource{APIVersion: api, Kind: kind, Namespace: ns, Name: name, JSON: data})
	}
	for _, ns := range slices.Sorted(maps.Keys(namespaces)) {
		if namespaces[ns] {
			kp.Namespaces = append(kp.Namespaces, ns)
		}
	}
	e.p.Kubernetes = kp
}

// String renders a resource for the plan.
func (r KubeResource) String() string {
	if r.Namespace != "" {
		return fmt.Sprintf("%s %s %s/%s", r.APIVersion, r.Kind, r.Namespace, r.Name)
	}
	return fmt.Sprintf("%s %s %s", r.APIVersion, r.Kind, r.Name)
}
