package reflector

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// BenchmarkReflect measures reflection: N injector clients announce P
// prefixes each, K monitor clients must receive all N×P. The time runs from
// the first UPDATE written to the last monitor complete. Injectors and
// monitors are raw speakers (pre-encoded, densely packed UPDATEs; monitors
// count NLRI without decoding attributes), in this process.
func BenchmarkReflect(b *testing.B) {
	for _, c := range []struct{ n, p, k int }{
		{10, 10_000, 2},
		{2, 50_000, 50},
		{10, 100_000, 2},
	} {
		b.Run(fmt.Sprintf("%dx%d-to-%d", c.n, c.p, c.k), func(b *testing.B) {
			if testing.Short() && c.n*c.p > 200_000 {
				b.Skip("-short")
			}
			benchReflect(b, c.n, c.p, c.k)
		})
	}
}

// injectorBlob pre-encodes injector i's P prefixes (/24s, unique across
// injectors) as packed UPDATEs.
func injectorBlob(i, p int, nh netip.Addr) []byte {
	a := newAttrs(attrsInput{list: []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeLocalPref(100),
	}, nextHop: nh})
	src := &ribPeer{routerID: 1}
	oa := (&exporter{}).export(&path{src: src, a: a}, roleEBGP, netip.Addr{}, nil)
	oa.bytes = oa.bytes[:0]
	for _, pa := range []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil),
		bgp.NewPathAttributeNextHop(nh.String()), bgp.NewPathAttributeLocalPref(100)} {
		bb, _ := pa.Serialize()
		oa.bytes = append(oa.bytes, bb...)
	}
	var part partition
	for j := range p {
		n := uint32(i*p + j)
		var ip [4]byte
		binary.BigEndian.PutUint32(ip[:], 0x0B000000+n<<8)
		part.announce(oa, nlriItem{k: keyOf(netip.PrefixFrom(netip.AddrFrom4(ip), 24))})
	}
	return part.encode(nil, famV4, false)
}

func benchReflect(b *testing.B, n, p, k int) {
	total := n * p
	blobs := make([][]byte, n)
	for i := range blobs {
		blobs[i] = injectorBlob(i, p, netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}))
	}
	var elapsed time.Duration
	for range b.N {
		elapsed += reflectOnce(b, blobs, total, k)
	}
	b.ReportMetric(float64(total)*float64(b.N)/elapsed.Seconds(), "prefixes/s")
	b.ReportMetric(elapsed.Seconds()*1000/float64(b.N), "ms/convergence")
	b.ReportMetric(float64(vmHWM())/1024, "peak-RSS-MB")
}

func reflectOnce(b *testing.B, blobs [][]byte, total, k int) time.Duration {
	b.StopTimer()
	cfg := testConfig()
	cfg.DynamicNeighbors = []DynamicNeighbor{{Prefix: netip.MustParsePrefix("127.0.0.0/8"), ASN: testASN, Client: true}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, addr, stop := runReflector(b, cfg)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	done := make(chan error, k)
	for m := range k {
		s, err := dialSpeaker(ctx, addr, fmt.Sprintf("127.0.1.%d", m+1), speakerOpts{asn: testASN, id: fmt.Sprintf("10.1.0.%d", m+1), hold: 90})
		if err != nil {
			b.Fatal(err)
		}
		defer s.conn.Close()
		wg.Go(func() { done <- countUntil(s, total) })
	}
	inj := make([]*rawSpeaker, len(blobs))
	for i := range blobs {
		s, err := dialSpeaker(ctx, addr, fmt.Sprintf("127.0.0.%d", i+2), speakerOpts{asn: testASN, id: fmt.Sprintf("10.0.0.%d", i+2), hold: 90})
		if err != nil {
			b.Fatal(err)
		}
		defer s.conn.Close()
		inj[i] = s
		wg.Go(func() { io.Copy(io.Discard, s.br) }) // injectors receive the others' routes
	}
	start := time.Now()
	b.StartTimer()
	for i, s := range inj {
		wg.Go(func() { s.conn.Write(blobs[i]) })
	}
	for range k {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	heapProfile()
	return el
}

// countUntil reads UPDATEs until total prefixes were announced, through a
// larger buffer (stacked on the handshake's, which may hold UPDATEs
// already).
func countUntil(s *rawSpeaker, total int) error {
	s.br = bufio.NewReaderSize(s.br, 256<<10)
	return countAnnounced(s, total)
}

// countAnnounced reads UPDATEs until total prefixes were announced.
func countAnnounced(s *rawSpeaker, total int) error {
	got := 0
	s.conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	for got < total {
		msg, err := s.rawMessage()
		if err != nil {
			return fmt.Errorf("monitor after %d prefixes: %w", got, err)
		}
		ann, _, _ := countPrefixes(msg, false)
		got += ann
	}
	return nil
}

// vmHWM returns the process's peak resident set size in KiB.
func vmHWM() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// BenchmarkFleet measures a fleet of clients as compute nodes are: each of
// n clients announces 4 prefixes and must receive every other client's.
// The time runs from the first connection to the last client complete.
// (reflector/bench -clients 5000 runs the same case against the reflector
// as a separate process.)
func BenchmarkFleet(b *testing.B) {
	for _, n := range []int{500, 2000} {
		b.Run(fmt.Sprintf("%d-clients", n), func(b *testing.B) {
			if testing.Short() && n > 500 {
				b.Skip("-short")
			}
			var elapsed time.Duration
			for range b.N {
				elapsed += fleetOnce(b, n, 4)
			}
			b.ReportMetric(elapsed.Seconds()*1000/float64(b.N), "ms/convergence")
			b.ReportMetric(float64(vmHWM())/1024, "peak-RSS-MB")
		})
	}
}

func fleetOnce(b *testing.B, n, p int) time.Duration {
	b.StopTimer()
	cfg := testConfig()
	cfg.DynamicNeighbors = []DynamicNeighbor{{Prefix: netip.MustParsePrefix("127.1.0.0/16"), ASN: testASN, Client: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, addr, stop := runReflector(b, cfg)
	defer stop()
	blobs := make([][]byte, n)
	for i := range blobs {
		blobs[i] = injectorBlob(i, p, netip.AddrFrom4([4]byte{192, 0, 2, 1}))
	}
	want := (n - 1) * p
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	b.StartTimer()
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			local := fmt.Sprintf("127.1.%d.%d", i/200, i%200+1)
			s, err := dialSpeaker(ctx, addr, local, speakerOpts{asn: testASN, id: fmt.Sprintf("10.1.%d.%d", i/200, i%200+1), hold: 90})
			<-sem
			if err != nil {
				errs <- fmt.Errorf("client %s: %w", local, err)
				return
			}
			defer s.conn.Close()
			if _, err := s.conn.Write(blobs[i]); err != nil {
				errs <- err
				return
			}
			errs <- countAnnounced(s, want)
		})
	}
	for range n {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	heapProfile()
	cancel()
	wg.Wait()
	return el
}

// heapProfile writes a heap profile to $RR_HEAPPROF, when set, after a GC.
func heapProfile() {
	f := os.Getenv("RR_HEAPPROF")
	if f == "" {
		return
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(os.Stderr, "heap in use %d MiB, stacks %d MiB, runtime total %d MiB\n", ms.HeapInuse>>20, ms.StackInuse>>20, ms.Sys>>20)
	if w, err := os.Create(f); err == nil {
		pprof.WriteHeapProfile(w)
		w.Close()
	}
}
