package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/reflector"
)

// TestBIRDConfigIsPlainReflector: the BIRD the benchmark compares against
// is configured as an operator would a plain reflector (rr client, import
// all, export all), with no filter or route resolution that slows it down
// and no kernel protocol; bird -p accepts it.
func TestBIRDConfigIsPlainReflector(t *testing.T) {
	dir := t.TempDir()
	args, err := birdImpl{"bird"}.command(dir, 20179, benchCase{n: 2, p: 10, k: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "bird.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, want := range []string{"rr client;", "import all; export all;", "passive on;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("bird.conf lacks %q:\n%s", want, conf)
		}
	}
	for _, bad := range []string{"protocol kernel", "protocol static", "RTS_BGP", "filter", "igp table"} {
		if strings.Contains(conf, bad) {
			t.Errorf("bird.conf has %q:\n%s", bad, conf)
		}
	}
	if n := strings.Count(conf, "protocol bgp "); n != 5 {
		t.Errorf("bird.conf has %d BGP protocols, want 5 (2 injectors, 3 monitors)", n)
	}
	if args[0] != "bird" {
		t.Errorf("command %v", args)
	}
	// BIRD itself parses it (a missing bird skips, or fails under CI=true).
	p := nstest.RequireCommand(t, "bird")
	if out, err := exec.Command(p, "-p", "-c", filepath.Join(dir, "bird.conf")).CombinedOutput(); err != nil {
		t.Errorf("bird -p: %v\n%s", err, out)
	}
}

// TestFRRConfigIsPlainReflector: FRR's reflector is one peer group of
// route-reflector clients over a listen range, with room for the fleet.
func TestFRRConfigIsPlainReflector(t *testing.T) {
	dir := t.TempDir()
	if _, err := (frrImpl{"bgpd"}).command(dir, 20179, benchCase{n: 5000, p: 4, fleet: true}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "bgpd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"neighbor RRC route-reflector-client", "bgp listen range 127.0.0.0/8 peer-group RRC", "bgp listen limit 5010"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("bgpd.conf lacks %q:\n%s", want, b)
		}
	}
}

// TestFleetAddrs: fleet clients get distinct loopback addresses outside
// the injectors' and monitors' ranges.
func TestFleetAddrs(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range fleetAddrs(5000) {
		if seen[a] || !strings.HasPrefix(a, "127.1.") || strings.HasSuffix(a, ".0") || strings.HasSuffix(a, ".255") {
			t.Fatalf("bad or repeated fleet address %s", a)
		}
		seen[a] = true
	}
}

// TestFilteredConfig: the bgpfabric-filtered target's configuration
// loads, with a filter of the asked number of rules in each direction on
// the clients' range; the plain target's has none.
func TestFilteredConfig(t *testing.T) {
	for _, rules := range []int{0, 100} {
		dir := t.TempDir()
		if _, err := (bgpfabricImpl{bin: "bgpfabric", filterRules: rules}).command(dir, 20179, benchCase{n: 2, p: 10, k: 3}); err != nil {
			t.Fatal(err)
		}
		cfg, err := reflector.LoadConfigFile(filepath.Join(dir, "reflector.yaml"))
		if err != nil {
			t.Fatalf("%d rules: %v", rules, err)
		}
		if rules == 0 {
			if len(cfg.Policy.Filters) != 0 || len(cfg.Policy.Ranges) != 0 {
				t.Errorf("plain target has a policy: %+v", cfg.Policy)
			}
			continue
		}
		if len(cfg.Policy.Filters) != 1 || len(cfg.Policy.Filters[0].Spec.ImportV4) != rules || len(cfg.Policy.Filters[0].Spec.ExportV4) != rules ||
			len(cfg.Policy.Ranges) != 1 {
			t.Errorf("filtered target's policy: %+v", cfg.Policy)
		}
	}
}
