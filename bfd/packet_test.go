package bfd

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// wire is a valid packet: version 1, diag 3, state Up, P and C set, mult 3,
// my 0x11223344, your 0x55667788, tx 300 ms, rx 200 ms, echo 0.
const wire = "23e8" + "0318" + "11223344" + "55667788" + "000493e0" + "00030d40" + "00000000"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseValid(t *testing.T) {
	got, err := Parse(mustHex(t, wire))
	if err != nil {
		t.Fatal(err)
	}
	want := ControlPacket{
		Diag: DiagNeighborSignaledDown, State: StateUp, Poll: true, ControlPlaneIndependent: true,
		DetectMult: 3, MyDiscriminator: 0x11223344, YourDiscriminator: 0x55667788,
		DesiredMinTxInterval: 300000, RequiredMinRxInterval: 200000,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Parse (-want +got):\n%s", d)
	}
	if enc := got.Append(nil); !bytes.Equal(enc, mustHex(t, wire)) {
		t.Fatalf("Append = %x, want %s", enc, wire)
	}
}

func TestParseRejects(t *testing.T) {
	// Each case edits one field of wire (byte offset, new value).
	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte
		want error
	}{
		{"short", func(b []byte) []byte { return b[:23] }, ErrShort},
		{"version 0", func(b []byte) []byte { b[0] = 0x03; return b }, ErrVersion},
		{"version 2", func(b []byte) []byte { b[0] = 0x43; return b }, ErrVersion},
		{"length 23", func(b []byte) []byte { b[3] = 23; return b }, ErrLength},
		{"length beyond payload", func(b []byte) []byte { b[3] = 25; return b }, ErrLength},
		{"detect mult 0", func(b []byte) []byte { b[2] = 0; return b }, ErrDetectMult},
		{"multipoint", func(b []byte) []byte { b[1] |= flagMultipont; return b }, ErrMultipoint},
		{"auth bit", func(b []byte) []byte { b[1] |= flagAuth; b[3] = 28; return append(b, 1, 4, 0, 0) }, ErrAuth},
		{"my discriminator 0", func(b []byte) []byte { copy(b[4:8], []byte{0, 0, 0, 0}); return b }, ErrMyDiscr},
		{"your discriminator 0 in Up", func(b []byte) []byte { copy(b[8:12], []byte{0, 0, 0, 0}); return b }, ErrYourDiscr},
		{"your discriminator 0 in Init", func(b []byte) []byte {
			copy(b[8:12], []byte{0, 0, 0, 0})
			b[1] = b[1]&0x3f | byte(StateInit)<<6
			return b
		}, ErrYourDiscr},
		{"poll and final", func(b []byte) []byte { b[1] |= flagFinal; return b }, ErrPollAndFinal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.edit(mustHex(t, wire)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse: err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"your discriminator 0 in Down", func(b []byte) []byte {
			copy(b[8:12], []byte{0, 0, 0, 0})
			b[1] = b[1]&0x3f | byte(StateDown)<<6
			return b
		}},
		{"your discriminator 0 in AdminDown", func(b []byte) []byte {
			copy(b[8:12], []byte{0, 0, 0, 0})
			b[1] &= 0x3f
			return b
		}},
		{"trailing bytes past length", func(b []byte) []byte { return append(b, 0xff, 0xff) }},
		{"length covers trailing bytes", func(b []byte) []byte { b[3] = 26; return append(b, 0, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(tc.edit(mustHex(t, wire))); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}

// FuzzParse: Parse never panics, and what it accepts survives a round trip
// through Append.
func FuzzParse(f *testing.F) {
	f.Add(mustHex(f, wire))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		q, err := Parse(p.Append(nil))
		if err != nil {
			t.Fatalf("re-parsing %+v: %v", p, err)
		}
		if p != q {
			t.Fatalf("round trip: %+v != %+v", p, q)
		}
		if !bytes.Equal(p.Append(nil)[4:], b[4:24]) {
			t.Fatalf("fields after the header changed: %x vs %x", p.Append(nil), b[:24])
		}
	})
}

// FuzzReceive feeds arbitrary packets, from the session's peer or not,
// with any TTL, to an engine with one Up session: nothing panics, nothing
// keyed by the packets is stored, and the session's state stays valid.
func FuzzReceive(f *testing.F) {
	f.Add(mustHex(f, wire), true, uint8(255), false)
	f.Add(mustHex(f, wire), false, uint8(64), true)
	f.Fuzz(func(t *testing.T, b []byte, fromPeer bool, ttl uint8, multihop bool) {
		n, sa, sb := newSimNet(t, Config{}, Config{})
		n.runUntil(5*time.Second, "both Up", bothUp(sa, sb))
		// Aim the packet at the session when it is long enough.
		if len(b) >= 12 && fromPeer {
			binary.BigEndian.PutUint32(b[8:], sa.localDiscr)
		}
		src := addrB
		if !fromPeer {
			src = netip.MustParseAddr("203.0.113.7")
		}
		n.a.receive(b, rxMeta{src: src, dst: addrA, ttl: int(ttl), multihop: multihop}, n.now)
		n.a.fire(n.now)
		if len(n.a.byDiscr) != 1 || len(n.a.byPeer) != 1 || len(n.a.byKey) != 1 || len(n.a.timers) != 1 {
			t.Fatal("engine maps changed")
		}
		if sa.state > StateUp {
			t.Fatalf("state %v", sa.state)
		}
		// The session still runs: it comes (back) Up.
		n.runUntil(30*time.Second, "Up again", bothUp(sa, sb))
	})
}
