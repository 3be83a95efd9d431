package reflector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseConfigFileFIBAndTTL: programFIB with its fib block, the TTL
// and next-hop settings of neighbours and ranges, and a range's password
// file; the errors name their field.
func TestParseConfigFileFIBAndTTL(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "range.pw")
	if err := os.WriteFile(pwFile, []byte("r4nge\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfigFile([]byte(`
routerID: 10.255.0.1
asNumber: 65000
programFIB: true
fib: {protocol: 90, multipath: false}
neighbors:
  - address: 192.0.2.1
    asNumber: 65100
    ebgpMultihop: 3
    keepOriginalNextHop: true
  - address: 10.0.0.2
    ttlSecurity: 1
dynamicNeighbors:
  - prefix: 10.1.0.0/16
    ttlSecurity: 2
    keepaliveTime: 10s
    passwordFile: ` + pwFile + `
`))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.ProgramFIB || cfg.FIB.Protocol != 90 || !cfg.FIB.SinglePath {
		t.Errorf("FIB: %v %+v", cfg.ProgramFIB, cfg.FIB)
	}
	n := cfg.Neighbors
	if n[0].EBGPMultihop != 3 || !n[0].KeepNextHop || n[0].TTLSecurity != 0 || n[1].TTLSecurity != 1 {
		t.Errorf("neighbours %+v", n)
	}
	if d := cfg.DynamicNeighbors[0]; d.TTLSecurity != 2 || d.Password != "r4nge" || d.KeepaliveTime.Seconds() != 10 {
		t.Errorf("dynamic neighbour %+v", d)
	}
	if cfg, err := ParseConfigFile([]byte("routerID: 10.255.0.1\nasNumber: 65000\n")); err != nil || cfg.ProgramFIB {
		t.Errorf("default: programFIB %v, %v", cfg.ProgramFIB, err)
	}
	// The fib block without programFIB: for --program-fib.
	if cfg, err := ParseConfigFile([]byte("routerID: 10.255.0.1\nasNumber: 65000\nfib: {protocol: 90}\n")); err != nil || cfg.ProgramFIB || cfg.FIB.Protocol != 90 {
		t.Errorf("fib without programFIB: %v %+v, %v", cfg.ProgramFIB, cfg.FIB, err)
	}
	if _, err := ParseConfigFile([]byte("routerID: 10.255.0.1\nasNumber: 65000\nprogramFIB: true\nfib: {protocol: 3}\n")); err == nil || !strings.Contains(err.Error(), "FIB.Protocol") {
		t.Errorf("fib protocol 3: %v", err)
	}

	_, err = ParseConfigFile([]byte(`
routerID: 10.255.0.1
asNumber: 65000
programFIB: true
fib: {protocol: 3}
neighbors:
  - address: 10.0.0.2
    ttlSecurity: 256
  - address: 10.0.0.3
    ttlSecurity: 1
    ebgpMultihop: 2
`))
	for _, want := range []string{"neighbors[0].ttlSecurity", "neighbors[1].ebgpMultihop"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to name %s", err, want)
		}
	}
}
