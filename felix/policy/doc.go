// Package policy is felix's pure policy calculation for one node: from
// workload and host endpoints (of every node), network policies, global
// network policies, profiles and namespaces it computes the ACL ruleset the
// node's dataplane must enforce, and keeps it up to date incrementally.
//
// The result is a Ruleset (see model.go): for each local endpoint an
// ingress and an egress Program (the ordered policies, then the profiles),
// the rules of every policy and profile that a local endpoint uses, and an
// IPSet for every distinct selector those rules use, holding the addresses
// of all endpoints, cluster-wide, that the selector matches. The nft
// package renders it into nftables.
//
// # Incremental calculation
//
// The Calculator is a single-goroutine state machine after Calico felix's
// calculation graph. Selector matching is indexed (index.go): endpoints are
// indexed by label, and selectors that require a label value are indexed by
// that value, so an endpoint update evaluates only the selectors that could
// match it (plus the ones it matched before and those that cannot be
// indexed), and a new selector is evaluated only against the endpoints that
// carry its required label. Two indexes are kept: one of every endpoint
// against the rule selectors of active policies (IP sets), and one of local
// endpoints against policy selectors (which policies apply where). Policies
// and profiles are active while some local endpoint uses them; only active
// ones contribute rules and IP sets.
//
// Changes accumulate until TakeUpdate, which returns an Update: the new
// value of every endpoint program, policy and profile that changed (nil
// when gone), new IP sets with their members, removed IP sets, and the
// membership deltas of the IP sets that stay. A label change on one endpoint
// therefore usually yields nothing but membership deltas.
//
// # Semantics (Calico's)
//
// Endpoint labels, for selectors, are the labelsToApply of the endpoint's
// profiles (an earlier profile wins a conflict), overridden by the
// endpoint's own labels, overridden by the reserved labels
// LabelNamespace and LabelOrchestrator and by the namespace's labels under
// NamespaceLabelPrefix (workload endpoints only). Namespace labels come
// from OnNamespaceUpdate; every namespace has at least LabelName.
//
// A NetworkPolicy applies to the endpoints of its namespace that its
// selector matches; a rule's selector in it matches endpoints of the same
// namespace unless the rule has a namespaceSelector. Rules whose ends have
// no selector, notSelector or namespaceSelector are not scoped (nets only).
// A notSelector is not scoped (as in Calico). A GlobalNetworkPolicy applies
// to the endpoints its selector matches (and, with namespaceSelector, only
// in the matching namespaces).
//
// Policies apply in ascending order, then by name (an unset order is after
// all ordered ones); a policy applies in a direction when its types include
// it. For an endpoint with at least one policy in a direction, a packet is
// dropped unless a rule allows it or passes it; Pass skips the rest of the
// policies to the profiles; Log logs and goes on. Profiles apply (in the
// endpoint's order) when no policy applies or a policy passed: a profile's
// Allow accepts, Deny drops, Pass goes to the next profile; a packet that no
// profile allows is dropped. So an endpoint with no policy and no profile
// denies everything in both directions. Host endpoints additionally get the
// failsafe ports (Config), which are open ahead of any policy.
//
// Not implemented: doNotTrack, preDNAT and applyOnForward (the api
// validation refuses them). A policy that cannot be enforced as written —
// one that sets them anyway, or whose rules or selectors do not compile —
// is never dropped, which would let through what it was written to deny:
// it fails closed (policies.go, failClosed), enforced as deny-all for the
// endpoints it selects ahead of every other policy, and the update returns
// an error that says so (FailedClosed lists them). A profile whose rules
// do not compile is likewise enforced as a deny in both directions. Named ports in rules resolve as
// in Calico: a named port set (Match.NamedPortSets, IPSet.NamedPort) holds
// (address, protocol, port) of every endpoint that the end's selector (or
// all()) matches and that declares the port for the rule's protocol; no
// such endpoint, no match. Host endpoints without an interface
// name (matched by expectedIPs only) contribute their addresses to IP sets
// but get no program, since matching addresses to interfaces needs the
// interface monitor.
package policy
