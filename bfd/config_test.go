package bfd

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigNormalize(t *testing.T) {
	p4, p6 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{"defaults", Config{Peer: p4}, ""},
		{"no peer", Config{}, "peer:"},
		{"multicast peer", Config{Peer: netip.MustParseAddr("224.0.0.1")}, "peer:"},
		{"zone", Config{Peer: netip.MustParseAddr("fe80::1%eth0"), Interface: "eth0"}, "peer:"},
		{"family mismatch", Config{Peer: p4, Local: netip.MustParseAddr("2001:db8::1")}, "local:"},
		{"multihop without local", Config{Peer: p4, Multihop: true}, "local:"},
		{"multihop with interface", Config{Peer: p4, Local: netip.MustParseAddr("192.0.2.1"), Multihop: true, Interface: "eth0"}, "interface:"},
		{"single hop min TTL", Config{Peer: p4, MinTTL: 250}, "minTTL:"},
		{"link-local without interface", Config{Peer: netip.MustParseAddr("fe80::1")}, "interface:"},
		{"tx too small", Config{Peer: p6, MinTx: time.Millisecond}, "minTx:"},
		{"rx too large", Config{Peer: p6, MinRx: time.Hour}, "minRx:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.normalize()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
			if tc.want == "" && (got.MinTx != DefaultMinTx || got.MinRx != DefaultMinRx || got.Multiplier != DefaultMultiplier) {
				t.Fatalf("defaults not filled: %+v", got)
			}
		})
	}
	mh, err := Config{Peer: p4, Local: netip.MustParseAddr("192.0.2.1"), Multihop: true}.normalize()
	if err != nil || mh.MinTTL != DefaultMultihopMinTTL {
		t.Fatalf("multihop default min TTL: %+v, %v", mh, err)
	}
}

// TestServerUpdateSession: a new interval through the API runs a poll
// sequence on the wire; both ends then use it.
func TestServerUpdateSession(t *testing.T) {
	a, b := serverPair(t)
	wa, wb := watch(t, a), watch(t, b)
	cfg := Config{Peer: lo2, Local: lo1, MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 15}
	ka, err := a.AddSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.AddSession(Config{Peer: lo1, Local: lo2, MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 15})
	if err != nil {
		t.Fatal(err)
	}
	wa.waitFor(t, ka, StateUp, 30*time.Second)
	wb.waitFor(t, kb, StateUp, 30*time.Second)
	waitCond(t, "the first polls done", func() bool {
		st, _ := a.Session(ka)
		return st.Counters.Polls >= 1 && st.TxInterval == 100*time.Millisecond
	})
	before, _ := a.Session(ka)
	cfg.MinTx = 400 * time.Millisecond
	if err := a.UpdateSession(cfg); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "the new interval agreed", func() bool {
		sa, _ := a.Session(ka)
		sb, _ := b.Session(kb)
		return sa.Counters.Polls > before.Counters.Polls && sa.TxInterval == 400*time.Millisecond &&
			sb.DetectTime == 15*400*time.Millisecond
	})
	if err := a.UpdateSession(Config{Peer: netip.MustParseAddr("127.0.0.9"), Local: lo1}); err == nil {
		t.Fatal("UpdateSession of an unknown session succeeded")
	}
}
