package netbuild

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The sim's nftables tables live in the run's own namespaces only (a
// node's, a segment's), are named with the prefix tablePrefix and go with
// their namespace at teardown; healing a fault deletes them by name.
const tablePrefix = "bfsim-"

// Drop is one rule set that drops traffic inside one namespace of the
// net: on a segment's bridge between two ports, or in a node's namespace
// on an interface or between addresses.
type Drop struct {
	// Netns is the namespace the rules go into.
	Netns string
	// Bridge: drop frames the bridge forwards from port InPort to port
	// OutPort (both set), in a bridge-family table.
	Bridge          bool
	InPort, OutPort string
	// Otherwise, in an inet table: what leaves through OutIf, what
	// arrives through InIf, what is sent to an address of To, what comes
	// from an address of From (any that is set).
	OutIf, InIf string
	To, From    []netip.Addr
}

// AddDrops puts drop rules into their namespaces, in tables named
// tablePrefix+name (one per family and namespace), and returns the
// namespaces it touched, for RemoveTables. On error, what was added stays
// for RemoveTables to remove.
func (n *Net) AddDrops(name string, drops []Drop) (touched []string, err error) {
	byNS := map[string][]Drop{}
	for _, d := range drops {
		if _, ok := byNS[d.Netns]; !ok {
			touched = append(touched, d.Netns)
		}
		byNS[d.Netns] = append(byNS[d.Netns], d)
	}
	var errs []error
	for _, ns := range touched {
		if err := n.addDrops(ns, tablePrefix+name, byNS[ns]); err != nil {
			errs = append(errs, fmt.Errorf("partition rules in %s: %w", ns, err))
		}
	}
	return touched, errors.Join(errs...)
}

func (n *Net) conn(ns string) (*nftables.Conn, error) {
	h, ok := n.Handle(ns)
	if !ok {
		return nil, fmt.Errorf("no namespace %s in this run", ns)
	}
	return nftables.New(nftables.WithNetNSFd(int(h)))
}

func (n *Net) addDrops(ns, table string, drops []Drop) error {
	c, err := n.conn(ns)
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	var br, in *nftables.Table
	var brFwd, pre, post *nftables.Chain
	accept := nftables.ChainPolicyAccept
	for _, d := range drops {
		if d.Bridge {
			if br == nil {
				br = c.AddTable(&nftables.Table{Family: nftables.TableFamilyBridge, Name: table})
				brFwd = c.AddChain(&nftables.Chain{Name: "forward", Table: br, Type: nftables.ChainTypeFilter,
					Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
			}
			c.AddRule(&nftables.Rule{Table: br, Chain: brFwd, Exprs: concat(
				ifname(expr.MetaKeyIIFNAME, d.InPort), ifname(expr.MetaKeyOIFNAME, d.OutPort), drop())})
			continue
		}
		if in == nil {
			in = c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: table})
			// Before conntrack and routing, and after everything: a
			// partition drops established flows too.
			raw := nftables.ChainPriorityRaw
			pre = c.AddChain(&nftables.Chain{Name: "prerouting", Table: in, Type: nftables.ChainTypeFilter,
				Hooknum: nftables.ChainHookPrerouting, Priority: raw, Policy: &accept})
			post = c.AddChain(&nftables.Chain{Name: "postrouting", Table: in, Type: nftables.ChainTypeFilter,
				Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityFilter, Policy: &accept})
		}
		if d.OutIf != "" {
			c.AddRule(&nftables.Rule{Table: in, Chain: post, Exprs: concat(ifname(expr.MetaKeyOIFNAME, d.OutIf), drop())})
		}
		if d.InIf != "" {
			c.AddRule(&nftables.Rule{Table: in, Chain: pre, Exprs: concat(ifname(expr.MetaKeyIIFNAME, d.InIf), drop())})
		}
		for _, a := range d.To {
			c.AddRule(&nftables.Rule{Table: in, Chain: post, Exprs: concat(addr(a, false), drop())})
		}
		for _, a := range d.From {
			c.AddRule(&nftables.Rule{Table: in, Chain: pre, Exprs: concat(addr(a, true), drop())})
		}
	}
	return c.Flush()
}

// RemoveTables deletes the tables named tablePrefix+name, of any family,
// from namespaces of the net. A namespace without one is fine.
func (n *Net) RemoveTables(name string, namespaces []string) error {
	var errs []error
	for _, ns := range namespaces {
		if err := n.removeTables(ns, tablePrefix+name); err != nil {
			errs = append(errs, fmt.Errorf("removing table %s%s in %s: %w", tablePrefix, name, ns, err))
		}
	}
	return errors.Join(errs...)
}

func (n *Net) removeTables(ns, table string) error {
	c, err := n.conn(ns)
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	ts, err := c.ListTables()
	if err != nil {
		return err
	}
	found := false
	for _, t := range ts {
		if t.Name == table {
			c.DelTable(t)
			found = true
		}
	}
	if !found {
		return nil
	}
	return c.Flush()
}

// Tables lists the sim's tables in a namespace of the net (for tests).
func (n *Net) Tables(ns string) ([]string, error) {
	c, err := n.conn(ns)
	if err != nil {
		return nil, err
	}
	defer c.CloseLasting()
	ts, err := c.ListTables()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range ts {
		if strings.HasPrefix(t.Name, tablePrefix) {
			out = append(out, t.Name)
		}
	}
	return out, nil
}

// setLoss puts (or, with pct 0, takes away) random loss on what leaves an
// interface: a netdev egress chain whose rule drops a packet when a
// random number below one million is below pct × 10,000.
func (n *Net) setLoss(ns, ifname string, pct float64) error {
	table := tablePrefix + "loss-" + ifname
	if err := n.removeTables(ns, table); err != nil {
		return err
	}
	if pct <= 0 {
		return nil
	}
	c, err := n.conn(ns)
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: table})
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "egress", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookEgress, Priority: nftables.ChainPriorityFilter, Policy: &accept, Device: ifname})
	var exprs []expr.Any
	if pct < 100 {
		const modulus = 1_000_000
		below := uint32(math.Round(pct * modulus / 100))
		exprs = []expr.Any{
			&expr.Numgen{Register: 1, Modulus: modulus, Type: unix.NFT_NG_RANDOM},
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binaryutil.BigEndian.PutUint32(below)},
		}
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(exprs, drop()...)})
	return c.Flush()
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func drop() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}} }

// ifname matches an interface name (iifname or oifname).
func ifname(key expr.MetaKey, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

// addr matches a packet's source or destination address (of its family).
func addr(a netip.Addr, src bool) []expr.Any {
	a = a.Unmap()
	proto, off, size := byte(unix.NFPROTO_IPV4), uint32(16), uint32(4)
	if a.Is6() {
		proto, off, size = unix.NFPROTO_IPV6, 24, 16
	}
	if src {
		off -= size
		if a.Is6() {
			off = 8
		}
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
	}
}
