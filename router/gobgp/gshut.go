package gobgp

import (
	"context"
	"fmt"

	api "github.com/osrg/gobgp/v3/api"
)

// Graceful shutdown honoured when received (RFC 8326, docs/policy.md).
//
// The global import assignment always starts with the policy
// bgpfabric-gshut: a path carrying GRACEFUL_SHUTDOWN (65535:0) gets the
// lowest LOCAL_PREF GoBGP's policy engine can set, so that any other path
// to the prefix wins and traffic moves before the sender closes its
// session. RFC 8326 recommends 0, but GoBGP reads a LOCAL_PREF action of 0
// as "no action" (table.NewLocalPrefAction), so it is 1: below the default
// 100 and every sensible configured value; two draining paths tie. The
// statement has no route action, so the session's own import policy
// (policy.go) decides next.

const (
	gshutPolicyName = "bgpfabric-gshut"
	gshutSetName    = "bgpfabric-gshut-community"
	// GShutLocalPref is the LOCAL_PREF of a received path that carries
	// GRACEFUL_SHUTDOWN.
	GShutLocalPref = 1
)

// setGShutPolicy creates the import policy, replacing any left from an
// earlier Start; assignPoliciesLocked assigns it.
func (s *Speaker) setGShutPolicy(ctx context.Context) error {
	// StopBgp keeps policies and assignments.
	_ = s.srv.DeletePolicyAssignment(ctx, &api.DeletePolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: importAssignment, Direction: api.PolicyDirection_IMPORT}, All: true})
	_ = s.srv.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: gshutPolicyName}, All: true})
	_ = s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{
		DefinedSet: &api.DefinedSet{DefinedType: api.DefinedType_COMMUNITY, Name: gshutSetName}, All: true})
	if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_COMMUNITY, Name: gshutSetName, List: []string{"65535:0"}}}); err != nil {
		return fmt.Errorf("adding the graceful-shutdown community set: %w", err)
	}
	// Only paths from peers: GoBGP's import policy also sees the paths we
	// originate, and a drained node's own (drain.go) must keep LOCAL_PREF 0.
	pol := &api.Policy{Name: gshutPolicyName}
	for _, rt := range []api.Conditions_RouteType{api.Conditions_ROUTE_TYPE_INTERNAL, api.Conditions_ROUTE_TYPE_EXTERNAL} {
		pol.Statements = append(pol.Statements, &api.Statement{
			Name:       gshutPolicyName + "-lp-" + rt.String(),
			Conditions: &api.Conditions{CommunitySet: &api.MatchSet{Type: api.MatchSet_ANY, Name: gshutSetName}, RouteType: rt},
			Actions:    &api.Actions{LocalPref: &api.LocalPrefAction{Value: GShutLocalPref}},
		})
	}
	own, err := s.setDrainOwnSets(ctx) // drainown.go
	if err != nil {
		return err
	}
	pol.Statements = append(pol.Statements, own...)
	if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
		return fmt.Errorf("adding the graceful-shutdown import policy: %w", err)
	}
	return nil
}
