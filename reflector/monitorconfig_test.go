package reflector

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestParseConfigFileBMPAndMRT: the bmp and mrt blocks convert with
// their defaults, and every error names its field.
func TestParseConfigFileBMPAndMRT(t *testing.T) {
	cfg, err := ParseConfigFile([]byte(`
routerID: 10.255.0.1
asNumber: 65000
bmp:
  collectors:
    - address: 127.0.0.1:11019
    - address: "[::1]:11019"
      bufferBytes: 1048576
  statsInterval: 30s
  sysName: rr1
  locRIB: true
mrt:
  dir: /var/lib/bgpfabric/mrt
  dumpInterval: 2h
  keep: 12
  updateLog: true
  updateLogRotate: 5m
`))
	if err != nil {
		t.Fatal(err)
	}
	want := BMPConfig{Collectors: []BMPCollector{{Address: "127.0.0.1:11019"}, {Address: "[::1]:11019", BufferBytes: 1 << 20}}, StatsInterval: 30 * time.Second, SysName: "rr1", LocRIB: true}
	if d := cmp.Diff(want, cfg.BMP); d != "" {
		t.Errorf("bmp (-want +got):\n%s", d)
	}
	wantMRT := MRTConfig{Dir: "/var/lib/bgpfabric/mrt", DumpInterval: 2 * time.Hour, Keep: 12, UpdateLog: true, UpdateLogRotate: 5 * time.Minute}
	if d := cmp.Diff(wantMRT, cfg.MRT); d != "" {
		t.Errorf("mrt (-want +got):\n%s", d)
	}
	// Defaults are filled in when the engine validates.
	v, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	if v.BMP.Collectors[0].BufferBytes != defaultBMPBuffer || v.MRT.UpdateLogBuffer != defaultMRTUpdateBuffer || cfg.BMP.Collectors[0].BufferBytes != 0 {
		t.Errorf("defaults: %+v %+v (and the caller's config must stay as it was: %+v)", v.BMP, v.MRT, cfg.BMP)
	}

	for _, tc := range []struct{ yaml, field string }{
		{"bmp: {collectors: [{address: 127.0.0.1}]}", "bmp.collectors[0].address"},
		{"bmp: {collectors: [{address: ':11019'}]}", "bmp.collectors[0].address"},
		{"bmp: {collectors: [{address: '127.0.0.1:0'}]}", "bmp.collectors[0].address"},
		{"bmp: {collectors: [{address: 'a:1'}, {address: 'a:1'}]}", "bmp.collectors[1].address"},
		{"bmp: {collectors: [{address: 'a:1', bufferBytes: -1}]}", "bmp.collectors[0].bufferBytes"},
		{"bmp: {statsInterval: 0s}", "bmp.statsInterval"},
		{"bmp: {statsInterval: soon}", "bmp.statsInterval"},
		{"mrt: {dumpInterval: 1h}", "mrt.dir"},
		{"mrt: {updateLog: true}", "mrt.dir"},
		{"mrt: {dir: /tmp, dumpInterval: 10ms}", "mrt.dumpInterval"},
		{"mrt: {dir: /tmp, keep: -1}", "mrt.keep"},
		{"mrt: {dir: /tmp, updateLogBuffer: -1}", "mrt.updateLogBuffer"},
		{"mrt: {dir: /tmp, updateLogRotate: 0s}", "mrt.updateLogRotate"},
		{"bmp: {collector: []}", "collector"},
	} {
		_, err := ParseConfigFile([]byte("routerID: 10.255.0.1\nasNumber: 65000\n" + tc.yaml + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %v, want one naming %s", tc.yaml, err, tc.field)
		}
	}
	// The engine's own validation, for callers that build a Config.
	c := testConfig()
	c.BMP.Collectors = []BMPCollector{{Address: "nowhere"}}
	c.MRT.UpdateLog = true
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "BMP.Collectors[0].Address") || !strings.Contains(err.Error(), "MRT.Dir") {
		t.Errorf("New: %v, want errors naming BMP.Collectors[0].Address and MRT.Dir", err)
	}
}
