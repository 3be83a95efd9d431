package sim

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReportFiles(t *testing.T) {
	r := &Report{Fabric: "f", RunID: "abc123", Nodes: 3, Converged: true, ConvergeSeconds: 1.5,
		Timings: Timings{Boot: 2 * time.Second}, Peers: map[string][]PeerState{"n-1": {{PeerIP: "10.0.0.2", AS: 64512, Type: "mesh", State: "Established"}}}}
	r.AddChecks([]CheckResult{
		{Name: "ok", Kind: "connectivity", Status: Passed, Probes: 2},
		{Name: "bad", Kind: "blocked", Status: Failed, Message: "1 of 1 probes failed", Failures: []string{"a -> b: reached"}},
		{Name: "later", Kind: "connectivity", Status: Skipped, Message: "not wired"},
	})
	if r.ChecksPassed != 1 || r.ChecksFailed != 2 || r.OK() {
		t.Fatalf("counts: %+v", r)
	}
	dir := t.TempDir()
	if err := r.WriteJSON(filepath.Join(dir, "r.json")); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	data, _ := os.ReadFile(filepath.Join(dir, "r.json"))
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"nodes", "boot_seconds", "converge_seconds", "checks_passed", "checks_failed", "peers"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	if got := m["timings"].(map[string]any)["boot_seconds"]; got != 2.0 {
		t.Errorf("timings.boot_seconds = %v, want 2", got)
	}
	if err := r.WriteJUnit(filepath.Join(dir, "r.xml")); err != nil {
		t.Fatal(err)
	}
	var s junitSuite
	data, _ = os.ReadFile(filepath.Join(dir, "r.xml"))
	if err := xml.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Tests != 4 || s.Failures != 1 || s.Skipped != 1 || s.Cases[2].Failure == nil || !strings.Contains(s.Cases[2].Failure.Body, "reached") {
		t.Errorf("junit: %+v", s)
	}
	var text strings.Builder
	r.WriteText(&text)
	for _, want := range []string{"converged in 1.50s", "bad    blocked       FAILED", "n-1   10.0.0.2  64512  mesh  Established", "checks: 1 passed, 2 failed"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestCommandTemplate(t *testing.T) {
	got := expand([]string{"{bin}", "node", "--node-name", "{node}", "--datastore={datastore}"}, map[string]string{"bin": "/b", "node": "n-1", "datastore": "unix:///s"})
	if strings.Join(got, " ") != "/b node --node-name n-1 --datastore=unix:///s" {
		t.Errorf("got %q", got)
	}
}

func TestReportTimeline(t *testing.T) {
	stall := 6.25
	r := &Report{Fabric: "f", Converged: true, Peers: map[string][]PeerState{}, Faults: []FaultResult{
		{Name: "cut", Action: "partition", Status: Passed, Target: "n-1 | n-2", Detail: "both directions, for 5s", StartSeconds: 12.3,
			SessionsLost: 2, RoutesWithdrawn: 4, LongestStallSeconds: &stall, StallFlow: "n-1-w -> n-2-w"},
		{Name: "pause", Action: "pause-agent", Status: Passed, Target: "n-3", StartSeconds: 30},
	}}
	var text strings.Builder
	r.WriteText(&text)
	for _, want := range []string{
		"+12.3s  cut    n-1 | n-2  partition: both directions, for 5s  2              4                 6.25s (n-1-w -> n-2-w)",
		"+30.0s  pause  n-3        pause-agent                         0              0                 -",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	file := filepath.Join(t.TempDir(), "j.xml")
	if err := r.WriteJUnit(file); err != nil {
		t.Fatal(err)
	}
	var s junitSuite
	if data, _ := os.ReadFile(file); xml.Unmarshal(data, &s) != nil || len(s.Cases) != 3 ||
		s.Cases[1].SystemOut != "at +12.3s: partition n-1 | n-2 (both directions, for 5s); reconverged in 0.00s; 2 sessions lost, 4 routes withdrawn, longest stall 6.25s (n-1-w -> n-2-w)" {
		t.Errorf("junit fault cases: %+v", s.Cases)
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"sessions_lost":2`, `"routes_withdrawn":4`, `"longest_stall_seconds":6.25`, `"start_seconds":12.3`, `"target":"n-1 | n-2"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("JSON lacks %s: %s", want, data)
		}
	}
}
