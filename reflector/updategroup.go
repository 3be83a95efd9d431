package reflector

import (
	"net/netip"
	"slices"
)

// memberConn is what the RIB needs of an established session: a queue that
// never blocks and a way to close it with a NOTIFICATION.
type memberConn interface {
	send(chunks ...[]byte)
	// sendDump queues a table dump of one family (see writer.go).
	sendDump(f family, b []byte)
	closeWith(code, subcode uint8, reason string)
}

// groupKey is an outbound policy: peers with equal keys receive identical
// bytes, apart from split horizon.
type groupKey struct {
	role    roleClass
	fams    families
	addPath families
	// localAddr is the next hop we set (eBGP only). It is the zero Addr
	// for iBGP and for eBGP neighbours that keep the original next hop,
	// so that those share one group and their routes go out unchanged.
	localAddr netip.Addr
	// pol identifies the export policy (policy.go); "" is none.
	pol string
	// extMsg: RFC 8654 extended messages were negotiated, so UPDATEs may
	// be up to 65,535 bytes long.
	extMsg bool
	// rtc is the address of the group's one member when it negotiated
	// RTC: its route target membership filters what it gets (famrtc.go).
	rtc netip.Addr
	// llgr are the families in which the members negotiated long-lived
	// graceful restart: only they receive LLGR-stale paths (llgr.go).
	llgr families
}

// maxMsgLen is the longest message the group's members accept.
func (k groupKey) maxMsgLen() int {
	if k.extMsg {
		return maxExtMsgLen
	}
	return maxMsgLen
}

// updateGroup is a set of established sessions sharing one groupKey.
type updateGroup struct {
	key     groupKey
	exp     *xchain // the export policy; nil accepts everything
	members []*member
	rtcPeer *ribPeer // the member whose RTC membership applies, or nil
	// tables are the RIB's, for the generic families' route keys, which
	// their export rules match on.
	tables *[numFamilies]*table
}

// pass reports whether the group sends path p of prefix k (family f):
// the RFC 4456 rules and the export policy; and the export rule whose
// changes apply (nil: none).
func (g *updateGroup) pass(f family, k pfxKey, p *path) (bool, *xrule) {
	if g.rtcPeer != nil && rtcFiltered(f) && !g.rtcPeer.rtc.matches(p.a) {
		return false, nil
	}
	return g.passPolicy(f, k, p)
}

// passPolicy is pass without route target constraint.
func (g *updateGroup) passPolicy(f family, k pfxKey, p *path) (bool, *xrule) {
	if !exportable(p.src, g.key.role) || p.a.llgrStale && !g.key.llgr.has(f) {
		return false, nil
	}
	if g.exp == nil {
		return true, nil
	}
	if f.generic() {
		rule, ok := g.exp.evalGen(f, g.tables[f].keys[k.hi], p.a)
		return ok, rule
	}
	rule, ok := g.exp.eval(f, k, p.a)
	return ok, rule
}

// member is an established session inside the RIB loop.
type member struct {
	rp    *ribPeer
	conn  memberConn
	group *updateGroup
	fams  families
	// rtcDefault is our default route target membership route, sent with
	// every dump of RTC (famrtc.go); nil without RTC.
	rtcDefault []byte
}

// join puts m into the group for key, creating it when needed; exp is
// the export policy that key.pol names.
func (rl *ribLoop) join(m *member, key groupKey, exp *xchain) {
	g := rl.groups[key]
	if g == nil {
		g = &updateGroup{key: key, exp: exp, tables: &rl.tables}
		if key.rtc.IsValid() {
			g.rtcPeer = m.rp
		}
		rl.groups[key] = g
	}
	g.members = append(g.members, m)
	m.group = g
}

// leave removes m from its group and drops the group when it empties.
func (rl *ribLoop) leave(m *member) {
	g := m.group
	if g == nil {
		return
	}
	g.members = slices.DeleteFunc(g.members, func(x *member) bool { return x == m })
	if len(g.members) == 0 {
		delete(rl.groups, g.key)
	}
	m.group = nil
}

// dump sends m the whole table of family f as its group exports it, then
// End-of-RIB when eor is set. It runs inside the loop, so m joins the live
// stream right after with nothing lost or repeated.
func (rl *ribLoop) dump(m *member, f family, eor bool) {
	t := rl.tables[f]
	g := m.group
	key := g.key
	var p partition
	t.each(func(k pfxKey, n uint32) {
		paths := t.paths(n)
		for i := range paths {
			pa := &paths[i]
			if pa.src != m.rp {
				if ok, rule := g.pass(f, k, pa); ok {
					p.announce(rl.exp.export(pa, key.role, key.localAddr, rule), nlriItem{k, pa.src.pathID})
				}
			}
			if !key.addPath.has(f) {
				break
			}
		}
	})
	ann, _ := p.counts()
	b := p.encodeWith(nil, g.encoding(t))
	if f == famRTC && rl.rtcAll > 0 {
		b = append(b, m.rtcDefault...)
	}
	if eor {
		b = appendEndOfRIB(b, f)
	}
	m.rp.stats.prefixesOut.Add(int64(ann))
	m.rp.stats.updatesOut.Add(int64(countMessages(b)))
	m.conn.sendDump(f, b)
}
