// Package acl is felix's ACL component: the policy calculation
// (felix/policy) feeding the nftables table (felix/nft). It implements
// felix.ACL, so the agent sees one small interface and knows neither
// package.
//
// Namespaces: the datastore has no Namespace kind yet, so every namespace
// has only its reserved name label (policy.LabelName) for
// namespaceSelectors.
package acl

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/calc"
	"github.com/bgpfabric/bgpfabric/felix/nft"
	"github.com/bgpfabric/bgpfabric/felix/policy"
)

// Config configures an ACL.
type Config struct {
	// NodeName is the node whose endpoints are local.
	NodeName string
	// FailsafeInbound and FailsafeOutbound stay open to and from this
	// node's host endpoints whatever the policy; nil means the defaults
	// (see policy.Config), empty non-nil none.
	FailsafeInbound, FailsafeOutbound []policy.Failsafe
	// WorkloadInterfacePrefixes make traffic of interfaces with these
	// prefixes that have no workload endpoint be dropped (see nft.Config).
	WorkloadInterfacePrefixes []string
	// Logger; nil discards.
	Logger *slog.Logger
}

// ACL keeps an nftables table equal to the policy calculation's result.
// It is not safe for concurrent use.
type ACL struct {
	log   *slog.Logger
	calc  *policy.Calculator
	table *nft.Table
	// known is every resource fed in, so that a snapshot can remove the
	// ones it lacks.
	known map[calc.Key]struct{}
	// rules counts the rules of each active policy and profile.
	rules    map[string]int
	total    int
	mustSend bool // the next Apply must reach the table, even if empty
}

// New returns an ACL that writes through dp.
func New(cfg Config, dp nft.Dataplane) *ACL {
	if cfg.NodeName == "" {
		// Without it no endpoint is local and no policy is enforced: a
		// silent fail-open, so refuse loudly.
		panic("acl.New: Config.NodeName is empty")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &ACL{
		log: cfg.Logger,
		calc: policy.New(policy.Config{
			Node: cfg.NodeName, FailsafeInbound: cfg.FailsafeInbound, FailsafeOutbound: cfg.FailsafeOutbound, Logger: cfg.Logger,
		}),
		table:    nft.New(dp, nft.Config{WorkloadInterfacePrefixes: cfg.WorkloadInterfacePrefixes, Logger: cfg.Logger}),
		known:    map[calc.Key]struct{}{},
		rules:    map[string]int{},
		mustSend: true,
	}
}

// NewNetlink returns an ACL that programs the table "bgpfabric" (family
// inet) of namespace ns (netns.None(): the caller's). ns must stay open
// while the ACL is used.
func NewNetlink(cfg Config, ns netns.NsHandle) *ACL {
	fd := 0
	if ns.IsOpen() {
		fd = int(ns)
	}
	return New(cfg, nft.NewNetlink(nft.NetlinkConfig{NetNS: fd}))
}

// OnSnapshot implements felix.ACL.
func (a *ACL) OnSnapshot(rs []api.Resource) {
	seen := make(map[calc.Key]struct{}, len(rs))
	for _, r := range rs {
		seen[calc.KeyOf(r)] = struct{}{}
	}
	for k := range a.known {
		if _, ok := seen[k]; !ok {
			a.OnRemove(k)
		}
	}
	for _, r := range rs {
		if err := a.OnUpdate(r); err != nil {
			a.log.Warn("resource cannot be enforced", logKeyError, err)
		}
	}
}

// OnUpdate implements felix.ACL.
func (a *ACL) OnUpdate(r api.Resource) error {
	k := calc.KeyOf(r)
	var err error
	switch r := r.(type) {
	case *api.WorkloadEndpoint:
		a.calc.OnWorkloadEndpointUpdate(r)
	case *api.HostEndpoint:
		a.calc.OnHostEndpointUpdate(r)
	case *api.NetworkPolicy:
		err = a.calc.OnNetworkPolicyUpdate(r)
	case *api.GlobalNetworkPolicy:
		err = a.calc.OnGlobalNetworkPolicyUpdate(r)
	case *api.Profile:
		err = a.calc.OnProfileUpdate(r)
	default:
		return nil
	}
	a.known[k] = struct{}{}
	if err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	return nil
}

// OnRemove implements felix.ACL.
func (a *ACL) OnRemove(k calc.Key) {
	switch k.Kind {
	case api.KindWorkloadEndpoint:
		a.calc.OnWorkloadEndpointRemove(k.Namespace, k.Name)
	case api.KindHostEndpoint:
		a.calc.OnHostEndpointRemove(k.Name)
	case api.KindNetworkPolicy, api.KindGlobalNetworkPolicy:
		a.calc.OnPolicyRemove(policy.PolicyKey{Namespace: k.Namespace, Name: k.Name})
	case api.KindProfile:
		a.calc.OnProfileRemove(k.Name)
	default:
		return
	}
	delete(a.known, k)
}

// Apply implements felix.ACL: the calculation's changes since the last
// Apply, as one nftables transaction. After a failure the table rewrites
// itself whole on the next Apply.
func (a *ACL) Apply(ctx context.Context) error {
	u := a.calc.TakeUpdate()
	a.count(u)
	if u.Empty() && !a.mustSend {
		return nil
	}
	if err := a.table.Apply(ctx, u); err != nil {
		a.mustSend = true
		return err
	}
	a.mustSend = false
	return nil
}

// count keeps the rule counts of the active policies and profiles.
func (a *ACL) count(u *policy.Update) {
	set := func(key string, r *policy.Rules) {
		a.total -= a.rules[key]
		delete(a.rules, key)
		if r != nil {
			a.rules[key] = len(r.Ingress) + len(r.Egress)
			a.total += a.rules[key]
		}
	}
	for k, r := range u.Policies {
		set("policy "+k.String(), r)
	}
	for n, r := range u.Profiles {
		set("profile "+n, r)
	}
}

// Resync implements felix.ACL.
func (a *ACL) Resync() {
	a.table.Resync()
	a.mustSend = true
}

// Rules implements felix.ACL.
func (a *ACL) Rules() int { return a.total }

// logKeyError is the log key of errors.
const logKeyError = "error"
