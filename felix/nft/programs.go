package nft

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/bgpfabric/bgpfabric/felix/policy"
)

// Endpoint programs.
//
// What one direction of an endpoint runs (its policies in order, then its
// profiles: endpointRules) is often the same for many endpoints: those
// with the same labels and profiles. Such endpoints share one chain, its
// program chain, named after a hash of its rules: ep-in-<hash> for
// ingress, ep-out-<hash> for egress. The verdict maps jump from the
// interface straight to it (and the base chains, for the host endpoint of
// all interfaces). So an endpoint whose programs exist already costs two
// map elements, and the ruleset grows with the number of distinct
// programs, not with endpoints × policies.
//
// Since a program chain's name stands for its rules, a program chain is
// never rewritten: an endpoint whose program changes has its map element
// moved to another chain (created if need be), and a program chain is
// deleted when the last interface that jumps to it goes. The Table counts
// those interfaces (Table.progRefs).

// progPair names the program chains of an interface's ingress and egress.
type progPair struct{ in, out string }

// programName names a program chain after its rules. 64 bits of SHA-256
// make a collision between the few thousand programs of a node
// vanishingly unlikely.
func programName(rules []*Rule, ingress bool) string {
	h := sha256.New()
	for _, r := range rules {
		h.Write([]byte(r.Text))
		h.Write([]byte{'\n'})
	}
	sum := h.Sum(nil)
	if ingress {
		return "ep-in-" + hex.EncodeToString(sum[:8])
	}
	return "ep-out-" + hex.EncodeToString(sum[:8])
}

// program is a rendered program chain.
type program struct {
	name  string
	rules []*Rule
}

// programs renders the programs of one transaction, each distinct one
// once (the rendering depends on which policies and profiles exist, which
// does not change during a transaction).
type programs struct {
	t    *Table
	memo map[string]program
}

func (t *Table) programs() *programs { return &programs{t: t, memo: map[string]program{}} }

// of returns the program chain of one direction of an endpoint.
func (ps *programs) of(prog *policy.Program, ingress bool) program {
	var b strings.Builder
	if ingress {
		b.WriteString("in")
	} else {
		b.WriteString("out")
	}
	for _, k := range prog.Policies {
		b.WriteByte(0)
		b.WriteString(k.String())
	}
	b.WriteByte(1)
	for _, name := range prog.Profiles {
		b.WriteByte(0)
		b.WriteString(name)
	}
	key := b.String()
	if p, ok := ps.memo[key]; ok {
		return p
	}
	rules := ps.t.r.endpointRules(prog, ingress, ps.t.hasPolicy, ps.t.hasProfile)
	p := program{name: programName(rules, ingress), rules: rules}
	ps.memo[key] = p
	return p
}

// allHEP returns the programs of the host endpoint of all interfaces, or
// nil if there is none.
func allHEP(progs map[ifaceKey]progPair) *progPair {
	if p, ok := progs[ifaceKey{policy.HostEndpoint, allInterfaces}]; ok {
		return &p
	}
	return nil
}
