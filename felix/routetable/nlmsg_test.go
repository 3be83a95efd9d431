package routetable

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
)

// TestRouteMsgRoundTrip encodes routes as NetlinkDataplane writes them and
// decodes them as it reads a dump: what goes out comes back.
func TestRouteMsgRoundTrip(t *testing.T) {
	for _, r := range []KernelRoute{
		{Table: 254, Protocol: 80, Type: TypeUnicast, Scope: ScopeLink, Dst: pfx("10.65.0.3/32"), LinkIndex: 7},
		{Table: 254, Protocol: 80, Type: TypeBlackhole, Dst: pfx("10.65.0.0/26")},
		{Table: 1000, Protocol: 80, Type: TypeUnicast, Dst: pfx("10.66.0.0/16"), Gateway: addr("192.168.1.1"), LinkIndex: 2, Src: addr("192.168.1.2")},
		{Table: 254, Protocol: 80, Type: TypeUnicast, Dst: pfx("fd00:65::3/128"), LinkIndex: 9, Priority: 1024},
		{Table: 100, Protocol: 81, Type: TypeUnreachable, Dst: pfx("0.0.0.0/0")},
		{Table: 100, Protocol: 81, Type: TypeProhibit, Dst: pfx("::/0"), Priority: 7},
		{Table: 254, Protocol: 81, Type: TypeUnicast, Dst: pfx("10.65.9.0/26"), Multipath: true, NextHops: []KernelNextHop{
			{Gateway: addr("10.99.0.1"), LinkIndex: 3}, {Gateway: addr("10.99.0.2")}, {Gateway: addr("10.99.0.3"), LinkIndex: 4}}},
		{Table: 254, Protocol: 81, Type: TypeUnicast, Dst: pfx("fd00:65::/122"), Multipath: true, NextHops: []KernelNextHop{
			{Gateway: addr("fd00:99::1"), LinkIndex: 3}, {Gateway: addr("fd00:99::2"), LinkIndex: 3}}},
	} {
		b := appendRouteMsg(nil, RouteOp{Kind: OpReplace, Route: r}, 42)
		var got []KernelRoute
		err := splitMsgs(b, func(m nlMsg) error {
			if m.typ != unix.RTM_NEWROUTE || m.seq != 42 || m.flags != unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_REPLACE {
				t.Errorf("%s: header type %d seq %d flags %#x", r.Dst, m.typ, m.seq, m.flags)
			}
			k, ok, err := parseRoute(m.data)
			if !ok || err != nil {
				t.Fatalf("%s: parseRoute: ok %v, %v", r.Dst, ok, err)
			}
			got = append(got, k)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]KernelRoute{r}, got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestRouteMsgFlags(t *testing.T) {
	r := KernelRoute{Table: 254, Protocol: 80, Dst: pfx("10.0.0.1/32"), Scope: scopeNowhere}
	var b []byte
	b = appendRouteMsg(b, RouteOp{Kind: OpAdd, Route: r}, 1)
	second := len(b)
	b = appendRouteMsg(b, RouteOp{Kind: OpDelete, Route: r}, 2)
	setAck(b, second)
	type hdr struct {
		Type, Flags uint16
		Seq         uint32
	}
	var got []hdr
	if err := splitMsgs(b, func(m nlMsg) error {
		got = append(got, hdr{m.typ, m.flags, m.seq})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []hdr{
		{unix.RTM_NEWROUTE, unix.NLM_F_REQUEST | unix.NLM_F_CREATE | unix.NLM_F_EXCL, 1},
		{unix.RTM_DELROUTE, unix.NLM_F_REQUEST | unix.NLM_F_ACK, 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

func TestParseAck(t *testing.T) {
	errMsg := func(code int32, flags uint16, tlvs ...byte) nlMsg {
		d := ne.AppendUint32(nil, uint32(code))
		d = append(d, make([]byte, nlmsgHdrLen)...) // the request's header
		return nlMsg{typ: unix.NLMSG_ERROR, flags: flags, data: append(d, tlvs...)}
	}
	msgTLV := func(s string) []byte {
		v := append([]byte(s), 0)
		b := ne.AppendUint16(nil, uint16(nlaHdrLen+len(v)))
		b = ne.AppendUint16(b, unix.NLMSGERR_ATTR_MSG)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	if valid, err := parseAck(errMsg(0, unix.NLM_F_CAPPED)); !valid || err != nil {
		t.Errorf("ACK: valid %v err %v", valid, err)
	}
	valid, err := parseAck(errMsg(-int32(syscall.ENODEV), unix.NLM_F_CAPPED|unix.NLM_F_ACK_TLVS, msgTLV("Nexthop device is not up")...))
	if !valid || !errors.Is(err, syscall.ENODEV) || err.Error() != "no such device (Nexthop device is not up)" {
		t.Errorf("error: valid %v err %v", valid, err)
	}
	if valid, _ := parseAck(nlMsg{typ: unix.NLMSG_ERROR, data: []byte{1, 2}}); valid {
		t.Error("a short message is a valid ACK")
	}
}

func TestSplitMsgsRejectsBadLength(t *testing.T) {
	b := appendRouteMsg(nil, RouteOp{Kind: OpAdd, Route: KernelRoute{Dst: pfx("10.0.0.1/32")}}, 1)
	ne.PutUint32(b, uint32(len(b)+8))
	if err := splitMsgs(b, func(nlMsg) error { return nil }); err == nil {
		t.Error("no error for a length past the end")
	}
}

// TestParseMultipathSortsAndRejectsVia: next hops come back sorted by
// gateway, whatever order the kernel sent; a next hop with RTA_VIA makes
// the route one we never match.
func TestParseMultipathSortsAndRejectsVia(t *testing.T) {
	r := KernelRoute{Table: 254, Protocol: 81, Type: TypeUnicast, Dst: pfx("10.65.9.0/26")}
	b := appendRouteMsg(nil, RouteOp{Kind: OpAdd, Route: r}, 1)
	b = appendMultipathAttr(b, []KernelNextHop{{Gateway: addr("10.0.0.9"), LinkIndex: 2}, {Gateway: addr("10.0.0.1"), LinkIndex: 2}})
	ne.PutUint32(b, uint32(len(b)))
	k, ok, err := parseRoute(b[nlmsgHdrLen:])
	if !ok || err != nil {
		t.Fatalf("parseRoute: %v %v", ok, err)
	}
	want := []KernelNextHop{{Gateway: addr("10.0.0.1"), LinkIndex: 2}, {Gateway: addr("10.0.0.9"), LinkIndex: 2}}
	if diff := cmp.Diff(want, k.NextHops, cmpopts.EquateComparable(netip.Addr{})); diff != "" || !k.Multipath {
		t.Errorf("next hops (-want +got):\n%s", diff)
	}

	// One next hop with RTA_VIA (an IPv6 gateway for an IPv4 route).
	b = appendRouteMsg(nil, RouteOp{Kind: OpAdd, Route: r}, 1)
	mp := len(b)
	b = appendMultipathAttr(b, []KernelNextHop{{Gateway: addr("10.0.0.1"), LinkIndex: 2}, {LinkIndex: 2}})
	via := []byte{0, 0, byte(unix.RTA_VIA), 0, 10, 0}
	via = append(via, addr("fd00::1").AsSlice()...)
	ne.PutUint16(via, uint16(len(via)))
	b = append(b, via...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	// Grow the second rtnexthop and RTA_MULTIPATH over the RTA_VIA.
	second := mp + nlaHdrLen + rtnhLen + nlaHdrLen + 4
	ne.PutUint16(b[second:], uint16(len(b)-second))
	ne.PutUint16(b[mp:], uint16(len(b)-mp))
	ne.PutUint32(b, uint32(len(b)))
	k, ok, err = parseRoute(b[nlmsgHdrLen:])
	if !ok || err != nil {
		t.Fatalf("parseRoute with RTA_VIA: %v %v", ok, err)
	}
	if !k.Multipath || len(k.NextHops) != 0 {
		t.Errorf("route with RTA_VIA: Multipath %v, next hops %v; want Multipath and none", k.Multipath, k.NextHops)
	}
	want2 := KernelRoute{Table: 254, Protocol: 81, Type: TypeUnicast, Dst: r.Dst, Multipath: true,
		NextHops: []KernelNextHop{{Gateway: addr("10.0.0.1")}}}
	if want2.sameAs(k) {
		t.Error("a route with RTA_VIA matches a wanted route")
	}
}
