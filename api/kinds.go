package api

import (
	"fmt"
	"sort"
	"strings"
)

// Kind names, as they appear in a document's "kind" field.
const (
	KindNode                = "Node"
	KindBGPConfiguration    = "BGPConfiguration"
	KindBGPPeer             = "BGPPeer"
	KindBGPFilter           = "BGPFilter"
	KindIPPool              = "IPPool"
	KindIPAMBlock           = "IPAMBlock"
	KindWorkloadEndpoint    = "WorkloadEndpoint"
	KindHostEndpoint        = "HostEndpoint"
	KindProfile             = "Profile"
	KindNetworkPolicy       = "NetworkPolicy"
	KindGlobalNetworkPolicy = "GlobalNetworkPolicy"
	KindFelixStatus         = "FelixStatus"
	KindBGPStatus           = "BGPStatus"
)

// KindInfo describes one kind of resource.
type KindInfo struct {
	Kind       string   // "WorkloadEndpoint"
	Plural     string   // "workloadendpoints": the key segment and CLI name
	Short      []string // CLI abbreviations, e.g. "wep"
	Namespaced bool
	// Status kinds are written by agents under a lease; operators read them
	// but do not apply them.
	Status bool
	New    func() Resource
}

var kinds = map[string]*KindInfo{}

// register adds a kind; called from the init of each kind's file.
func register(ki KindInfo) {
	if _, dup := kinds[ki.Kind]; dup {
		panic("api: kind registered twice: " + ki.Kind)
	}
	kinds[ki.Kind] = &ki
}

// Kinds returns every registered kind, sorted by name.
func Kinds() []*KindInfo {
	out := make([]*KindInfo, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

// LookupKind finds a kind by its name, plural or short name, ignoring case
// ("Node", "nodes", "node", "wep").
func LookupKind(name string) (*KindInfo, error) {
	l := strings.ToLower(name)
	for _, k := range kinds {
		if strings.ToLower(k.Kind) == l || k.Plural == l {
			return k, nil
		}
		for _, s := range k.Short {
			if s == l {
				return k, nil
			}
		}
	}
	return nil, fmt.Errorf("unknown kind %q", name)
}

// New returns an empty resource of the named kind with its TypeMeta set.
func New(kind string) (Resource, error) {
	ki, err := LookupKind(kind)
	if err != nil {
		return nil, err
	}
	r := ki.New()
	*r.GetTypeMeta() = TypeMeta{APIVersion: APIVersion, Kind: ki.Kind}
	return r, nil
}
