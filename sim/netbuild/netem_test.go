package netbuild

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/vishvananda/netlink/nl"

	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// TestNetemOptions decodes the netem options SetImpairment sends, as the
// kernel's netem_change reads them: tc_netem_qopt, then nested attributes.
// (The machines this is developed on have no sch_netem to ask.)
func TestNetemOptions(t *testing.T) {
	ip := &topology.ImpairPlan{Delay: 100 * time.Millisecond, Jitter: 10 * time.Millisecond, Distribution: topology.DistNormal,
		DelayCorrelation: 25, Loss: 2, LossCorrelation: 50, Duplicate: 1, Reorder: 5, Corrupt: 100}
	share := func(f float64) uint32 { return uint32(f * math.MaxUint32) }
	data := netemOptions(ip).Serialize()
	// rtattr header (TCA_OPTIONS), then the payload.
	if typ := binary.NativeEndian.Uint16(data[2:]); typ != nl.TCA_OPTIONS {
		t.Fatalf("attribute type %d, want TCA_OPTIONS", typ)
	}
	payload := data[4:binary.NativeEndian.Uint16(data)]
	q := nl.DeserializeTcNetemQopt(payload)
	// Gap 1 with a reorder probability, as tc sets it: netem reorders
	// nothing with gap 0.
	if q.Limit != netemLimit || q.Loss != share(0.02) || q.Duplicate != share(0.01) || q.Latency != 0 || q.Gap != 1 {
		t.Errorf("qopt: %+v", q)
	}
	attrs := rawAttrs(netemOptions(ip))
	u64 := func(b []byte) uint64 { return binary.NativeEndian.Uint64(b) }
	if got := u64(attrs[tcaNetemLatency64]); got != uint64(100*time.Millisecond) {
		t.Errorf("latency64 %d", got)
	}
	if got := u64(attrs[tcaNetemJitter64]); got != uint64(10*time.Millisecond) {
		t.Errorf("jitter64 %d", got)
	}
	corr := nl.DeserializeTcNetemCorr(attrs[nl.TCA_NETEM_CORR])
	if corr.DelayCorr != share(0.25) || corr.LossCorr != share(0.5) {
		t.Errorf("correlations %+v", corr)
	}
	if r := nl.DeserializeTcNetemReorder(attrs[nl.TCA_NETEM_REORDER]); r.Probability != share(0.05) {
		t.Errorf("reorder %+v", r)
	}
	if c := nl.DeserializeTcNetemCorrupt(attrs[nl.TCA_NETEM_CORRUPT]); c.Probability != math.MaxUint32 {
		t.Errorf("corrupt %+v", c)
	}
	// The normal table: 4096 int16 quantiles, increasing, symmetric about
	// 0, the median 0 and the quartiles at ±0.674 σ (×8192).
	dist := attrs[nl.TCA_NETEM_DELAY_DIST]
	if len(dist) != 2*4096 {
		t.Fatalf("distribution table of %d bytes", len(dist))
	}
	at := func(i int) int { return int(int16(binary.NativeEndian.Uint16(dist[2*i:]))) }
	for i := 1; i < 4096; i++ {
		if at(i) < at(i-1) {
			t.Fatalf("table decreases at %d: %d < %d", i, at(i), at(i-1))
		}
	}
	if at(0) != -at(4095) || at(2048)+at(2047) != 0 || math.Abs(float64(at(3072))/8192-0.6745) > 0.01 {
		t.Errorf("table: first %d last %d middle %d %d upper quartile %d", at(0), at(4095), at(2047), at(2048), at(3072))
	}
	// Uniform jitter sends no table; loss alone goes to nftables.
	if _, ok := rawAttrs(netemOptions(&topology.ImpairPlan{Delay: time.Millisecond, Jitter: time.Millisecond}))[nl.TCA_NETEM_DELAY_DIST]; ok {
		t.Error("a uniform jitter sent a distribution table")
	}
	if !lossByNft(&topology.ImpairPlan{Loss: 3}) || lossByNft(&topology.ImpairPlan{Loss: 3, LossCorrelation: 1}) || needsNetem(&topology.ImpairPlan{Loss: 3, Rate: 1}) {
		t.Error("loss alone must be an nftables rule, correlated loss netem's")
	}
}

// rawAttrs splits netem's options into their nested attributes.
func rawAttrs(a *nl.RtAttr) map[uint16][]byte {
	data := a.Serialize()
	payload := data[4:binary.NativeEndian.Uint16(data)]
	out := map[uint16][]byte{}
	for rest := payload[nl.SizeofTcNetemQopt:]; len(rest) >= 4; {
		l := int(binary.NativeEndian.Uint16(rest))
		out[binary.NativeEndian.Uint16(rest[2:])] = rest[4:l]
		rest = rest[min(len(rest), (l+3)&^3):]
	}
	return out
}
