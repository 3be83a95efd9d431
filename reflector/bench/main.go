// Command bench is a bgperf-style route-reflector benchmark: N injector
// clients each announce P unique prefixes, K monitor clients must each
// receive all N×P; it measures the time from the first UPDATE written to
// the last monitor complete, and the reflector's CPU seconds over that
// window and peak RSS. It runs bgpfabric's reflector as a separate process
// and, when installed, BIRD 2, FRR bgpd and gobgpd configured as plain
// reflectors, all on loopback (the daemon on 127.0.0.1, injectors on
// 127.0.1.x, monitors on 127.0.2.x), and prints one table with ratios
// against BIRD. `make bench-rr` runs it.
//
// Every daemon runs in its own temporary directory (config, sockets,
// logs), is killed with its process group when its run ends, and the
// directory is removed, also on error or Ctrl-C. Nothing touches the
// kernel's routes: BIRD has no kernel protocol, bgpd runs without zebra.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchCase is n injectors of p prefixes each and k monitors; or, with
// fleet, n clients of p prefixes each that all receive each other's.
type benchCase struct {
	n, p, k int
	fleet   bool
	evpn    bool // EVPN type-2 routes instead of IPv4 prefixes (evpn.go)
}

func (c benchCase) String() string {
	if c.fleet {
		return fmt.Sprintf("%d clients×%d", c.n, c.p)
	}
	if c.evpn {
		return fmt.Sprintf("%d×%d→%d EVPN", c.n, c.p, c.k)
	}
	return fmt.Sprintf("%d×%d→%d", c.n, c.p, c.k)
}

func parseCases(s string) ([]benchCase, error) {
	var out []benchCase
	for _, f := range strings.Split(s, ",") {
		var c benchCase
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%dx%d-%d", &c.n, &c.p, &c.k); err != nil || c.n <= 0 || c.p <= 0 || c.k <= 0 {
			return nil, fmt.Errorf("-cases: %q is not NxP-K (e.g. 10x10000-2)", f)
		}
		if c.n > 250 || c.k > 250 || c.n*c.p > 1<<22 {
			return nil, fmt.Errorf("-cases: %q is too large", f)
		}
		out = append(out, c)
	}
	return out, nil
}

// result is one measurement.
type result struct {
	impl    string
	c       benchCase
	elapsed time.Duration
	estab   time.Duration // fleet: until every session was established
	cpu     time.Duration
	rssKiB  int
	err     error
}

func main() {
	bgpfabric := flag.String("bgpfabric", "bin/bgpfabric", "the bgpfabric binary")
	cases := flag.String("cases", "10x10000-2,2x50000-50,10x100000-2", "cases, NxP-K, comma separated")
	targets := flag.String("targets", "bgpfabric,bird,frr,gobgpd", "implementations to run (skipped when not installed)")
	runs := flag.Int("runs", 1, "runs per case and implementation; the median is reported")
	timeout := flag.Duration("timeout", 5*time.Minute, "limit per run")
	clients := flag.Int("clients", 0, "run the fleet case instead: this many clients (e.g. 5000), each announcing -client-prefixes, all receiving each other's")
	clientPrefixes := flag.Int("client-prefixes", 4, "prefixes per client in the fleet case")
	filterRules := flag.Int("filter-rules", 100, "rules per direction of the filter on every client in the bgpfabric-filtered target (add it to -targets; compared with bgpfabric)")
	fam := flag.String("family", "ipv4", "the routes of the NxP-K cases: ipv4 (unicast /24s) or evpn (EVPN type-2 MAC/IP routes; bgpfabric, frr and gobgpd only)")
	flag.Parse()
	cs, err := parseCases(*cases)
	switch *fam {
	case "ipv4":
	case "evpn":
		for i := range cs {
			cs[i].evpn = true
		}
	default:
		err = fmt.Errorf("-family %q: ipv4 or evpn", *fam)
	}
	if *clients > 0 {
		cs, err = []benchCase{{n: *clients, p: *clientPrefixes, fleet: true}}, nil
		if *clients > maxFleet || *clientPrefixes <= 0 || *clients**clientPrefixes > 1<<20 {
			err = fmt.Errorf("-clients %d -client-prefixes %d: at most %d clients and 1Mi prefixes", *clients, *clientPrefixes, maxFleet)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var impls []impl
	for _, name := range strings.Split(*targets, ",") {
		im, err := lookupImpl(strings.TrimSpace(name), *bgpfabric, max(*filterRules, 2))
		if err != nil {
			fmt.Fprintf(os.Stderr, "skipping %s: %v\n", name, err)
			continue
		}
		impls = append(impls, im)
	}
	var results []result
	all := map[string][]result{} // every run, by implementation and case
	for _, c := range cs {
		for _, im := range impls {
			var rs []result
			for i := 0; i < *runs && ctx.Err() == nil; i++ {
				r := runOnce(ctx, im, c, *timeout)
				fmt.Fprintf(os.Stderr, "%-10s %-14s %s\n", im.name(), c, describe(r))
				rs = append(rs, r)
			}
			all[im.name()+" "+c.String()] = rs
			if len(rs) > 0 {
				results = append(results, median(rs))
			}
		}
	}
	printTable(os.Stdout, results)
	printFilterRatios(os.Stdout, cs, all)
	if ctx.Err() != nil {
		os.Exit(130)
	}
}

func describe(r result) string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	if r.c.fleet {
		return fmt.Sprintf("established %.3fs converged %.3fs cpu %.2fs rss %d MiB", r.estab.Seconds(), r.elapsed.Seconds(), r.cpu.Seconds(), r.rssKiB/1024)
	}
	return fmt.Sprintf("%.3fs cpu %.2fs rss %d MiB", r.elapsed.Seconds(), r.cpu.Seconds(), r.rssKiB/1024)
}

func median(rs []result) result {
	var ok []result
	for _, r := range rs {
		if r.err == nil {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return rs[0]
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].elapsed < ok[j].elapsed })
	return ok[len(ok)/2]
}

// runOnce starts the implementation, runs one case and stops it.
func runOnce(ctx context.Context, im impl, c benchCase, timeout time.Duration) (res result) {
	res = result{impl: im.name(), c: c}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	port, err := freePort()
	if err != nil {
		res.err = err
		return res
	}
	d, err := startDaemon(ctx, im, port, c)
	if err != nil {
		res.err = err
		return res
	}
	defer d.stop()
	if c.fleet {
		res.estab, res.elapsed, res.cpu, err = driveFleet(ctx, d, port, c)
	} else {
		res.elapsed, res.cpu, err = drive(ctx, d, port, c)
	}
	res.rssKiB = d.peakRSS()
	if err != nil {
		res.err = fmt.Errorf("%w (log: %s)", err, d.logTail())
	}
	return res
}

func printTable(w *os.File, rs []result) {
	base := map[string]result{}
	for _, r := range rs {
		if r.impl == "bird" && r.err == nil {
			base[r.c.String()] = r
		}
	}
	baseName := "BIRD"
	for _, r := range rs { // BIRD 2 carries no EVPN: the EVPN cases compare with FRR
		if r.impl == "frr" && r.err == nil && r.c.evpn {
			base[r.c.String()] = r
			baseName = "FRR"
		}
	}
	fmt.Fprintf(w, "\n| case | implementation | convergence | vs %[1]s | CPU | vs %[1]s | peak RSS | vs %[1]s |\n", baseName)
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		if r.err != nil {
			fmt.Fprintf(w, "| %s | %s | %s | | | | | |\n", r.c, r.impl, shortErr(r.err))
			continue
		}
		b, hasBase := base[r.c.String()]
		ratio := func(x, y float64) string {
			if !hasBase || y == 0 {
				return ""
			}
			return fmt.Sprintf("%.2f×", x/y)
		}
		conv := fmt.Sprintf("%.3f s", r.elapsed.Seconds())
		if r.c.fleet {
			conv += fmt.Sprintf(" (all established at %.3f s)", r.estab.Seconds())
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f s | %s | %d MiB | %s |\n", r.c, r.impl,
			conv, ratio(r.elapsed.Seconds(), b.elapsed.Seconds()),
			r.cpu.Seconds(), ratio(r.cpu.Seconds(), b.cpu.Seconds()),
			r.rssKiB/1024, ratio(float64(r.rssKiB), float64(b.rssKiB)))
	}
}

func shortErr(err error) string {
	s := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	if i := strings.Index(s, " (log:"); i > 0 {
		s = s[:i]
	}
	return strconv.Quote(s)
}

// printFilterRatios compares bgpfabric-filtered with bgpfabric, case by
// case (the goal: time at most 1.3x), each metric's median against the
// other's (the table's row is the run of median convergence).
func printFilterRatios(w *os.File, cs []benchCase, all map[string][]result) {
	med := func(rs []result, f func(result) float64) float64 {
		var v []float64
		for _, r := range rs {
			if r.err == nil {
				v = append(v, f(r))
			}
		}
		if len(v) == 0 {
			return 0
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	metrics := []struct {
		name string
		f    func(result) float64
	}{
		{"convergence", func(r result) float64 { return r.elapsed.Seconds() }},
		{"CPU", func(r result) float64 { return r.cpu.Seconds() }},
		{"peak RSS", func(r result) float64 { return float64(r.rssKiB) }},
	}
	for _, c := range cs {
		p, f := all["bgpfabric "+c.String()], all["bgpfabric-filtered "+c.String()]
		if len(p) == 0 || len(f) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s: filtered/unfiltered, medians of each:", c)
		for _, m := range metrics {
			if d := med(p, m.f); d > 0 {
				fmt.Fprintf(w, " %s %.2f×", m.name, med(f, m.f)/d)
			}
		}
		fmt.Fprintln(w)
	}
}
