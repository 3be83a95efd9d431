package bfd

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The benchmark's peer runs in a child process (this test binary again,
// told so by the environment), so that the CPU time the benchmark counts
// is that of one Server: the one under test.
const benchPeerEnv = "BFD_BENCH_PEER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(benchPeerEnv); spec != "" {
		os.Exit(runBenchPeer(spec))
	}
	os.Exit(m.Run())
}

// benchSpec is what the child is told: its ports, the parent's, and the
// sessions.
type benchSpec struct {
	port, multiPort, peerPort, peerMultiPort int
	n                                        int
	iv                                       time.Duration
	mult                                     int
}

func (s benchSpec) String() string {
	return fmt.Sprintf("%d,%d,%d,%d,%d,%s,%d", s.port, s.multiPort, s.peerPort, s.peerMultiPort, s.n, s.iv, s.mult)
}

func parseBenchSpec(v string) (benchSpec, error) {
	f := strings.Split(v, ",")
	if len(f) != 7 {
		return benchSpec{}, fmt.Errorf("bench spec %q: want 7 fields", v)
	}
	var s benchSpec
	var err error
	for i, p := range []*int{&s.port, &s.multiPort, &s.peerPort, &s.peerMultiPort, &s.n} {
		if *p, err = strconv.Atoi(f[i]); err != nil {
			return s, err
		}
	}
	if s.iv, err = time.ParseDuration(f[5]); err != nil {
		return s, err
	}
	s.mult, err = strconv.Atoi(f[6])
	return s, err
}

// benchPeerAddr is the address of the peer end of session i; the end
// under test is 127.0.0.1.
func benchPeerAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}) }

// runBenchPeer is the child: a Server with the peer end of every
// session, until its standard input closes. It writes "ready" when its
// sessions are added.
func runBenchPeer(v string) int {
	s, err := parseBenchSpec(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	srv, err := NewServer(ServerConfig{
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		SingleHopPort: s.port, MultihopPort: s.multiPort, PeerSingleHopPort: s.peerPort, PeerMultihopPort: s.peerMultiPort,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Close()
	for i := range s.n {
		cfg := Config{Peer: lo1, Local: benchPeerAddr(i), MinTx: s.iv, MinRx: s.iv, Multiplier: uint8(s.mult)}
		if _, err := srv.AddSession(cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	var downs uint64
	for _, st := range srv.Sessions() {
		downs += st.Counters.Downs
	}
	fmt.Fprintf(os.Stderr, "peer: %d Downs\n", downs)
	return 0
}

// BenchmarkServer runs n sessions of one Server in this process against
// a peer Server in a child process, over loopback addresses (127.0.0.1
// against 127.1.x.y), and measures this process's CPU time (user +
// system, getrusage RUSAGE_SELF: the child is not counted) once all are
// Up with the interval agreed. One op is one millisecond of wall time:
// -benchtime=10000x runs ten seconds, -benchtime=300000x five minutes.
// flaps counts transitions out of Up of this process's sessions (false
// detections: nothing fails on loopback), drops the packets discarded or
// not sent during the measurement (the peer's first packets, sent before
// our sessions exist, are not counted).
func BenchmarkServer(b *testing.B) {
	for _, c := range []struct {
		n    int
		iv   time.Duration
		mult int
	}{{1000, 100 * time.Millisecond, 3}, {1000, 300 * time.Millisecond, 3}} {
		b.Run(fmt.Sprintf("n=%d/interval=%v/mult=%d", c.n, c.iv, c.mult), func(b *testing.B) { benchServer(b, c.n, c.iv, c.mult) })
	}
}

func benchServer(b *testing.B, n int, iv time.Duration, mult int) {
	sp, mp, pp, pmp := freePort(b), freePort(b), freePort(b), freePort(b)
	srv, err := NewServer(ServerConfig{
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		SingleHopPort: sp, MultihopPort: mp, PeerSingleHopPort: pp, PeerMultihopPort: pmp,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	spec := benchSpec{port: pp, multiPort: pmp, peerPort: sp, peerMultiPort: mp, n: n, iv: iv, mult: mult}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchPeerEnv+"="+spec.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("peer process: %q, %v", line, err)
	}
	for i := range n {
		cfg := Config{Peer: benchPeerAddr(i), Local: lo1, MinTx: iv, MinRx: iv, Multiplier: uint8(mult)}
		if _, err := srv.AddSession(cfg); err != nil {
			b.Fatal(err)
		}
	}
	waitAllUp(b, srv, n, iv)
	downs := func() (d uint64) {
		for _, st := range srv.Sessions() {
			d += st.Counters.Downs
		}
		return d
	}
	downs0, c0 := downs(), srv.Counters()
	cpu0, wall0 := cpuTime(b), time.Now()
	b.ResetTimer()
	time.Sleep(time.Duration(b.N) * time.Millisecond) // one wakeup: its own CPU stays out of the count
	b.StopTimer()
	cpu, wall := cpuTime(b)-cpu0, time.Since(wall0)
	b.ReportMetric(float64(cpu.Nanoseconds())/(float64(n)*wall.Seconds()), "cpu-ns/session-s")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
	b.ReportMetric(float64(downs()-downs0), "flaps")
	c := srv.Counters()
	b.ReportMetric(float64(c.RxMalformed+c.RxUnknown+c.RxBadTTL+c.TxErrors-(c0.RxMalformed+c0.RxUnknown+c0.RxBadTTL+c0.TxErrors)), "drops")
	b.ReportMetric(0, "ns/op")
}

// waitAllUp waits until n sessions of srv are Up at interval iv.
func waitAllUp(b *testing.B, srv *Server, n int, iv time.Duration) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		up := 0
		for _, st := range srv.Sessions() {
			if st.State == StateUp && st.TxInterval == iv {
				up++
			}
		}
		if up == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d sessions Up at %v after 2 minutes", up, n, iv)
		}
		time.Sleep(100 * time.Millisecond) // polling a snapshot: no event for "all Up"
	}
}
