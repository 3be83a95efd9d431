package reflector

import "time"

// groupOut collects one group's outbound changes of one flush, partitioned
// for split horizon: shared goes to every member, bySrc[s] to every member
// but s, special[m] to m alone.
type groupOut struct {
	g       *updateGroup
	shared  partition
	bySrc   map[*ribPeer]*partition
	special map[*member]*partition
}

func (o *groupOut) part(src *ribPeer) *partition {
	if m := src.member; m == nil || m.group != o.g {
		return &o.shared
	}
	if o.bySrc == nil {
		o.bySrc = map[*ribPeer]*partition{}
	}
	p := o.bySrc[src]
	if p == nil {
		p = &partition{}
		o.bySrc[src] = p
	}
	return p
}

func (o *groupOut) specialFor(m *member) *partition {
	if o.special == nil {
		o.special = map[*member]*partition{}
	}
	p := o.special[m]
	if p == nil {
		p = &partition{}
		o.special[m] = p
	}
	return p
}

// flushGroup computes group g's outbound change for the prefixes of t
// changed since the last flush, encodes it once and queues it to members.
// cur[i] holds the current paths of t.changed[i].
func (rl *ribLoop) flushGroup(g *updateGroup, t *table, cur [][]path) {
	defer rl.met.observeGroupFlush(time.Now())
	o := &groupOut{g: g}
	if g.key.addPath.has(t.fam) {
		for i, c := range t.changed {
			rl.diffAll(o, t.fam, c.k, c.old, cur[i])
		}
	} else {
		for i, c := range t.changed {
			rl.diffBest(o, t.fam, c.k, c.old, cur[i])
		}
	}
	rl.sendGroup(o, g.encoding(t))
}

// diffBest handles a group without add-path: only the best path counts.
// An export policy decides on the best path alone: when it rejects the
// best, the prefix is not sent (no fallback to the next path), as BIRD
// and GoBGP do.
func (rl *ribLoop) diffBest(o *groupOut, f family, k pfxKey, old, cur []path) {
	role := o.g.key.role
	var ob, nb *path
	var rule *xrule
	if len(old) > 0 {
		if ok, _ := o.g.pass(f, k, &old[0]); ok {
			ob = &old[0]
		}
	}
	if len(cur) > 0 {
		var ok bool
		if ok, rule = o.g.pass(f, k, &cur[0]); ok {
			nb = &cur[0]
		}
	}
	it := nlriItem{k: k}
	switch {
	case nb != nil:
		if ob != nil && ob.src == nb.src && ob.a == nb.a {
			return
		}
		o.part(nb.src).announce(rl.exp.export(nb, role, o.g.key.localAddr, rule), it)
		// The new best's source had received the old best: take it back.
		if ob != nil && ob.src != nb.src && nb.src.member != nil && nb.src.member.group == o.g {
			o.specialFor(nb.src.member).withdraw(it)
		}
	case ob != nil:
		o.part(ob.src).withdraw(it)
	}
}

// diffAll handles an add-path group: every exportable path is sent, each
// under its source's path identifier.
func (rl *ribLoop) diffAll(o *groupOut, f family, k pfxKey, old, cur []path) {
	role := o.g.key.role
	for i := range old {
		op := &old[i]
		if ok, _ := o.g.pass(f, k, op); !ok {
			continue
		}
		if j := indexOf(cur, op.src); j < 0 {
			o.part(op.src).withdraw(nlriItem{k, op.src.pathID})
		} else if cur[j].a != op.a {
			if ok, _ := o.g.pass(f, k, &cur[j]); !ok { // now rejected by the export policy
				o.part(op.src).withdraw(nlriItem{k, op.src.pathID})
			}
		}
	}
	for i := range cur {
		cp := &cur[i]
		if j := indexOf(old, cp.src); j >= 0 && old[j].a == cp.a {
			continue
		}
		if ok, rule := o.g.pass(f, k, cp); ok {
			o.part(cp.src).announce(rl.exp.export(cp, role, o.g.key.localAddr, rule), nlriItem{k, cp.src.pathID})
		}
	}
}

// sendGroup encodes every partition once, one after the other into one
// buffer, and queues it to every member: whole to a member that sent none
// of the changes, and as the two pieces around its own partition to one
// that did. A member's share costs two slice headers however many peers
// the changes came from (a fleet of thousands of clients joining at once
// makes as many partitions in a flush).
func (rl *ribLoop) sendGroup(o *groupOut, e encoding) {
	type chunk struct {
		start, end     int
		ann, wds, msgs int
	}
	var (
		all   []byte
		total chunk
		own   map[*ribPeer]chunk
	)
	add := func(p *partition) chunk {
		a, w := p.counts()
		c := chunk{start: len(all), ann: a, wds: w}
		all = p.encodeWith(all, e)
		c.end = len(all)
		c.msgs = countMessages(all[c.start:])
		total.ann, total.wds, total.msgs = total.ann+c.ann, total.wds+c.wds, total.msgs+c.msgs
		return c
	}
	if !o.shared.empty() {
		add(&o.shared)
	}
	if len(o.bySrc) > 0 {
		own = make(map[*ribPeer]chunk, len(o.bySrc))
		for src, p := range o.bySrc {
			own[src] = add(p)
		}
	}
	for _, m := range o.g.members {
		out := make([][]byte, 0, 3)
		delta, msgs := total.ann-total.wds, total.msgs
		if c, ok := own[m.rp]; ok {
			if c.start > 0 {
				out = append(out, all[:c.start:c.start])
			}
			if c.end < len(all) {
				out = append(out, all[c.end:])
			}
			delta -= c.ann - c.wds
			msgs -= c.msgs
		} else if len(all) > 0 {
			out = append(out, all)
		}
		if sp := o.special[m]; sp != nil {
			b := sp.encodeWith(nil, e)
			out = append(out, b)
			delta -= len(sp.withdraws)
			msgs += countMessages(b)
		}
		if len(out) > 0 {
			m.rp.stats.prefixesOut.Add(int64(delta))
			m.rp.stats.updatesOut.Add(int64(msgs))
			m.conn.send(out...)
		}
	}
}
