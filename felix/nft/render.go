package nft

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/bgpfabric/bgpfabric/felix/policy"
	"github.com/google/nftables/expr"
)

// Names of the table's fixed chains and maps.
const (
	chainForward = "forward"
	chainInput   = "input"
	chainOutput  = "output"
	mapWlFrom    = "wl-from"  // iifname → jump ep-out-<hash>: workload egress
	mapWlTo      = "wl-to"    // oifname → jump ep-in-<hash>: workload ingress
	mapHepFrom   = "hep-from" // iifname → jump ep-in-<hash>: host ingress
	mapHepTo     = "hep-to"   // oifname → jump ep-out-<hash>: host egress
)

// maxName keeps chain and set names well under the kernel's 256 bytes.
const maxName = 200

func shortName(s string) string {
	if len(s) <= maxName {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return s[:maxName-17] + "~" + hex.EncodeToString(sum[:8])
}

// policyChain is the chain of one direction of a policy: pi- for ingress,
// po- for egress.
func policyChain(k policy.PolicyKey, ingress bool) string {
	if ingress {
		return shortName("pi-" + k.String())
	}
	return shortName("po-" + k.String())
}

// profileChain is the chain of one direction of a profile.
func profileChain(name string, ingress bool) string {
	if ingress {
		return shortName("pri-" + name)
	}
	return shortName("pro-" + name)
}

// endpointMaps names the verdict maps that dispatch to an endpoint's
// ingress and egress chains: by oifname and iifname for workloads (their
// ingress is traffic the host sends out of the veth), by iifname and
// oifname for host endpoints.
func endpointMaps(kind policy.EndpointKind) (ingress, egress string) {
	if kind == policy.WorkloadEndpoint {
		return mapWlTo, mapWlFrom
	}
	return mapHepFrom, mapHepTo
}

const allInterfaces = "*"

// setName names the family's half of an IP set.
func setName(id policy.SetID, family int) string { return fmt.Sprintf("%s-%d", id, family) }

type renderer struct {
	cfg Config
}

func (r *renderer) both() uint32 { return r.cfg.MarkAccept | r.cfg.MarkPass }

// baseChains renders forward, input and output. allHEP is the program of
// the host endpoint of all interfaces, if there is one.
func (r *renderer) baseChains(fs *policy.Failsafes, allHEP *progPair) map[string][]*Rule {
	est := expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED
	conntrack := func() []*Rule {
		return []*Rule{
			new(builder).ctState(est).verdict(expr.VerdictAccept),
			new(builder).ctState(expr.CtStateBitINVALID).verdict(expr.VerdictDrop),
			new(builder).clearMark(r.both()).rule(),
		}
	}
	A := r.cfg.MarkAccept
	unknown := func(in bool) []*Rule {
		var out []*Rule
		for _, p := range r.cfg.WorkloadInterfacePrefixes {
			b := new(builder)
			if in {
				b.iifname(p + "*")
			} else {
				b.oifname(p + "*")
			}
			out = append(out, b.markIs(A, false).verdict(expr.VerdictDrop))
		}
		return out
	}
	fwd := conntrack()
	fwd = append(fwd, new(builder).vmap(true, mapWlFrom).rule())
	fwd = append(fwd, unknown(true)...)
	fwd = append(fwd, new(builder).clearMark(r.both()).rule())
	fwd = append(fwd, new(builder).vmap(false, mapWlTo).rule())
	fwd = append(fwd, unknown(false)...)

	host := func(in bool) []*Rule {
		wl, hep := mapWlFrom, mapHepFrom
		if !in {
			wl, hep = mapWlTo, mapHepTo
		}
		rs := conntrack()
		rs = append(rs, ndp()...)
		rs = append(rs, new(builder).vmap(in, wl).rule(),
			new(builder).markIs(A, true).verdict(expr.VerdictAccept))
		rs = append(rs, unknown(in)...)
		lo := new(builder)
		if in {
			lo.iifname("lo")
		} else {
			lo.oifname("lo")
		}
		rs = append(rs, lo.verdict(expr.VerdictAccept))
		var failsafes []policy.Failsafe
		if fs != nil {
			failsafes = fs.Outbound
			if in {
				failsafes = fs.Inbound
			}
		}
		for _, f := range failsafes {
			b := new(builder)
			if f.Net.IsValid() {
				fam := 4
				if f.Net.Addr().Is6() {
					fam = 6
				}
				b.nfproto(fam).net(fam, in, f.Net, false)
			}
			rs = append(rs, b.l4proto(f.Protocol, false).port(false, f.Port, f.Port, false).verdict(expr.VerdictAccept))
		}
		rs = append(rs, new(builder).vmap(in, hep).rule(),
			new(builder).markIs(A, true).verdict(expr.VerdictAccept))
		if allHEP != nil {
			prog := allHEP.in
			if !in {
				prog = allHEP.out
			}
			rs = append(rs, new(builder).jump(prog))
		}
		return rs
	}
	return map[string][]*Rule{chainForward: fwd, chainInput: host(true), chainOutput: host(false)}
}

// ICMPv6 types that the host always sends and receives, ahead of any
// policy: multicast listener query, report and done (130-132), router
// solicitation (133), neighbour solicitation and advertisement (135,
// 136), and MLDv2 report (143). Without neighbour discovery no IPv6
// packet crosses a link, so a policy that allows, say, TCP 8080 to a
// workload or host endpoint would cut it off from IPv6 altogether.
// (Calico accepts the same types from workloads ahead of their policy.)
// These messages never leave their link, so the forward chain never sees
// them; router advertisements (134) remain subject to policy.
var ndpTypes = []struct{ lo, hi uint8 }{{130, 133}, {135, 136}, {143, 143}}

func ndp() []*Rule {
	var out []*Rule
	for _, r := range ndpTypes {
		out = append(out, new(builder).nfproto(6).l4proto(58, false).icmpTypes(r.lo, r.hi).verdict(expr.VerdictAccept))
	}
	return out
}

// endpointRules renders one direction of an endpoint (its program chain,
// which endpoints with the same program share): its policies in
// order, a drop if policies applied and none passed, then the profiles,
// then a drop. A policy that passes sets the pass mark, which skips the
// remaining policies.
//
// An ingress Allow accepts the packet outright: ingress is the last check
// on every path (forward: after the source's egress; output: host to
// workload; input: host endpoint ingress). An egress Allow cannot, since
// the destination's ingress must still be checked in the forward hook: it
// sets the accept mark and returns, and the program chain returns to the
// base chain at once. Program chains return only with the accept mark
// set (they end in a drop otherwise), which the base chains rely on.
func (r *renderer) endpointRules(prog *policy.Program, ingress bool, hasPolicy func(policy.PolicyKey) bool, hasProfile func(string) bool) []*Rule {
	A, P := r.cfg.MarkAccept, r.cfg.MarkPass
	var out []*Rule
	n := 0
	for _, k := range prog.Policies {
		if !hasPolicy(k) {
			continue
		}
		n++
		out = append(out, new(builder).markIs(P, false).jump(policyChain(k, ingress)))
		if !ingress {
			out = append(out, new(builder).markIs(A, true).verdict(expr.VerdictReturn))
		}
	}
	if n > 0 {
		out = append(out, new(builder).markIs(P, false).verdict(expr.VerdictDrop))
	}
	for _, name := range prog.Profiles {
		if !hasProfile(name) {
			continue
		}
		out = append(out, new(builder).jump(profileChain(name, ingress)))
		if !ingress {
			out = append(out, new(builder).markIs(A, true).verdict(expr.VerdictReturn))
		}
	}
	return append(out, new(builder).verdict(expr.VerdictDrop))
}

// policyRules renders the rules of one direction of a policy or profile.
// An Allow accepts (ingress) or sets the accept mark and returns (egress;
// see endpointRules); a Pass sets the pass mark and
// returns (in a profile it just returns, to the next profile); Deny
// drops; Log logs and goes on.
func (r *renderer) policyRules(rules []policy.Rule, logName string, ingress, profile bool) []*Rule {
	var out []*Rule
	for i := range rules {
		out = append(out, r.ruleVariants(&rules[i], logName, ingress, profile)...)
	}
	return out
}

// portAlt is one alternative of a rule's port list: a range or a named
// port set.
type portAlt struct {
	r   *policy.PortRange
	set policy.SetID
}

func portAlts(m *policy.Match) []portAlt {
	if len(m.Ports) == 0 && len(m.NamedPortSets) == 0 {
		return []portAlt{{}}
	}
	var out []portAlt
	for i := range m.Ports {
		out = append(out, portAlt{r: &m.Ports[i]})
	}
	for _, s := range m.NamedPortSets {
		out = append(out, portAlt{set: s})
	}
	return out
}

// netAlts returns the positive nets of a family as alternatives: [invalid]
// for no nets, nil if there are nets but none of the family.
func netAlts(nets []netip.Prefix, family int) []netip.Prefix {
	if len(nets) == 0 {
		return []netip.Prefix{{}}
	}
	var out []netip.Prefix
	for _, n := range nets {
		if fam(n.Addr()) == family {
			out = append(out, n)
		}
	}
	return out
}

// cidrFamilies returns the families of a rule's CIDRs, or both if it has
// none.
func cidrFamilies(ru *policy.Rule) []int {
	var has [7]bool
	for _, nets := range [][]netip.Prefix{ru.Src.Nets, ru.Src.NotNets, ru.Dst.Nets, ru.Dst.NotNets} {
		for _, n := range nets {
			has[fam(n.Addr())] = true
		}
	}
	switch {
	case has[4] && !has[6]:
		return []int{4}
	case has[6] && !has[4]:
		return []int{6}
	}
	return []int{4, 6}
}

func fam(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func usesAddrs(m *policy.Match) bool {
	return len(m.Nets)+len(m.NotNets)+len(m.NamedPortSets)+len(m.NotNamedPortSets) > 0 || m.Set != "" || m.NotSet != ""
}

// ruleVariants renders a rule as one nft rule per address family it needs
// and per alternative of its positive nets and ports (nft rules are
// conjunctions).
//
// As in Calico, a rule's CIDRs (nets and notNets, at both ends) restrict
// it to their family: a rule whose only CIDRs are notNets of IPv6 is an
// IPv6 rule, which no IPv4 packet matches (rather than every one, since
// no IPv4 address is in an IPv6 net). A rule with CIDRs of both families
// (which Calico refuses) is rendered for both, each with its own nets.
func (r *renderer) ruleVariants(ru *policy.Rule, logName string, ingress, profile bool) []*Rule {
	families := []int{0}
	switch {
	case ru.IPVersion != 0:
		families = []int{int(ru.IPVersion)}
	case usesAddrs(&ru.Src) || usesAddrs(&ru.Dst):
		families = cidrFamilies(ru)
	}
	var out []*Rule
	for _, f := range families {
		af := f
		if af == 0 {
			af = 4 // unused: no address matches
		}
		srcNets, dstNets := netAlts(ru.Src.Nets, af), netAlts(ru.Dst.Nets, af)
		for _, sn := range srcNets {
			for _, dn := range dstNets {
				for _, sp := range portAlts(&ru.Src) {
					for _, dp := range portAlts(&ru.Dst) {
						b := new(builder)
						if f != 0 {
							b.nfproto(f)
						}
						if ru.Protocol != 0 {
							b.l4proto(ru.Protocol, false)
						}
						if ru.NotProtocol != 0 {
							b.l4proto(ru.NotProtocol, true)
						}
						r.end(b, af, true, &ru.Src, sn, sp)
						r.end(b, af, false, &ru.Dst, dn, dp)
						if ru.ICMP != nil {
							b.icmp(ru.ICMP.Type, ru.ICMP.Code, ru.ICMP.HasCode, false)
						}
						if ru.NotICMP != nil {
							b.icmp(ru.NotICMP.Type, ru.NotICMP.Code, ru.NotICMP.HasCode, true)
						}
						out = append(out, r.action(b, ru.Action, logName, ingress, profile))
					}
				}
			}
		}
	}
	return out
}

func (r *renderer) end(b *builder, f int, src bool, m *policy.Match, net netip.Prefix, pa portAlt) {
	if net.IsValid() {
		b.net(f, src, net, false)
	}
	for _, n := range m.NotNets {
		if fam(n.Addr()) == f {
			b.net(f, src, n, true)
		}
	}
	if m.Set != "" {
		b.inSet(f, src, setName(m.Set, f), false)
	}
	if m.NotSet != "" {
		b.inSet(f, src, setName(m.NotSet, f), true)
	}
	switch {
	case pa.r != nil:
		b.port(src, pa.r.Lo, pa.r.Hi, false)
	case pa.set != "":
		b.inPortSet(f, src, setName(pa.set, f), false)
	}
	for _, p := range m.NotPorts {
		b.port(src, p.Lo, p.Hi, true)
	}
	for _, s := range m.NotNamedPortSets {
		b.inPortSet(f, src, setName(s, f), true)
	}
}

func (r *renderer) action(b *builder, a policy.Action, logName string, ingress, profile bool) *Rule {
	switch a {
	case policy.Allow:
		if ingress {
			return b.verdict(expr.VerdictAccept)
		}
		return b.setMark(r.cfg.MarkAccept).verdict(expr.VerdictReturn)
	case policy.Pass:
		if profile {
			return b.verdict(expr.VerdictReturn)
		}
		return b.setMark(r.cfg.MarkPass).verdict(expr.VerdictReturn)
	case policy.Log:
		prefix := r.cfg.LogPrefix + " " + logName + " "
		if len(prefix) > 127 {
			prefix = prefix[:127]
		}
		return b.log(prefix).rule()
	}
	return b.verdict(expr.VerdictDrop)
}
