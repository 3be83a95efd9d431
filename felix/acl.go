package felix

import (
	"context"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/calc"
)

// ACL is the access-control part of the agent: a policy calculation and
// the dataplane that enforces its result. The agent feeds it the same
// resources as the route calculation (endpoints of every node, blocks,
// pools) plus the policy kinds (ACLKinds), and applies it before the
// interfaces and routes. It is called from the agent's goroutine only.
type ACL interface {
	// OnSnapshot makes rs the ACL's whole input: what it holds that is not
	// in rs is removed.
	OnSnapshot(rs []api.Resource)
	// OnUpdate adds or changes a resource. An error means the resource
	// cannot be enforced as written (e.g. an unsupported policy feature);
	// the agent logs it, and the ACL must fail closed, never drop it:
	// felix/acl enforces such a policy as deny-all for its endpoints, or
	// keeps its last good version when not even its selector can be read
	// (felix/policy, failClosed).
	OnUpdate(r api.Resource) error
	// OnRemove removes a resource.
	OnRemove(k calc.Key)
	// Apply programs what changed since the last successful Apply, as one
	// transaction; after a failure the next Apply tries again.
	Apply(ctx context.Context) error
	// Resync makes the next Apply rewrite the whole ACL state, repairing
	// anything changed behind the agent's back.
	Resync()
	// Rules counts the rules that are programmed, for the status.
	Rules() int
}

// ACLKinds are the kinds an ACL needs on top of the route calculation's.
var ACLKinds = []string{api.KindProfile, api.KindNetworkPolicy, api.KindGlobalNetworkPolicy}

// routeKinds are the kinds the route and interface calculation uses.
var routeKinds = []string{api.KindWorkloadEndpoint, api.KindHostEndpoint, api.KindIPAMBlock, api.KindIPPool}
