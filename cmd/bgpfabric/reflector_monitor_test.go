package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/mrt"

	"github.com/bgpfabric/bgpfabric/reflector"
)

// TestReflectorControlMRTDump: GET /mrt/dump on the control socket is a
// TABLE_DUMP_V2 snapshot (503 before the reflector exists).
func TestReflectorControlMRTDump(t *testing.T) {
	ctx, eng, sock := startTestControl(t)
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	get := func() (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://reflector/mrt/dump", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "not configured") {
		t.Errorf("before the reflector exists: %d %s", code, body)
	}
	r, err := reflector.New(reflector.Config{RouterID: netip.MustParseAddr("10.255.0.1"), ASN: 64512, ListenAddrs: []string{"127.0.0.1:0"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	defer func() { stop(); <-done }()
	select {
	case <-r.Ready():
	case <-ctx.Done():
		t.Fatal("reflector not ready")
	}
	eng.p.Store(r)
	code, body := get()
	if code != http.StatusOK {
		t.Fatalf("GET /mrt/dump: %d %s", code, body)
	}
	var h mrt.MRTHeader
	if err := h.DecodeFromBytes(body); err != nil {
		t.Fatal(err)
	}
	m, err := mrt.ParseMRTBody(&h, body[mrt.MRT_COMMON_HEADER_LEN:])
	if err != nil {
		t.Fatal(err)
	}
	pit, ok := m.Body.(*mrt.PeerIndexTable)
	if !ok || pit.CollectorBgpId.String() != "10.255.0.1" || mrt.MRT_COMMON_HEADER_LEN+int(h.Len) != len(body) {
		t.Errorf("snapshot of an empty RIB: %v (%d bytes)", m.Body, len(body))
	}
}

// TestReflectorMonitorFlags: the BMP and MRT flags add to the engine's
// configuration, and bad values are refused naming the flag.
func TestReflectorMonitorFlags(t *testing.T) {
	cmd, o := reflectorCommand(&globalOptions{})
	if err := cmd.ParseFlags([]string{"--bmp-collector", "127.0.0.1:11019", "--bmp-collector", "[::1]:11019",
		"--bmp-stats-interval", "30s", "--bmp-loc-rib", "--mrt-dir", "/srv/mrt", "--mrt-dump-interval", "1h", "--mrt-keep", "5", "--mrt-update-log"}); err != nil {
		t.Fatal(err)
	}
	if err := o.monitor.check(); err != nil {
		t.Fatal(err)
	}
	c := reflector.Config{BMP: reflector.BMPConfig{Collectors: []reflector.BMPCollector{{Address: "192.0.2.1:1790"}}}}
	o.monitor.apply(&c)
	if len(c.BMP.Collectors) != 3 || c.BMP.Collectors[2].Address != "[::1]:11019" || c.BMP.StatsInterval != 30*time.Second || !c.BMP.LocRIB {
		t.Errorf("BMP %+v", c.BMP)
	}
	if m := c.MRT; m.Dir != "/srv/mrt" || m.DumpInterval != time.Hour || m.Keep != 5 || !m.UpdateLog {
		t.Errorf("MRT %+v", m)
	}
	cmd, o = reflectorCommand(&globalOptions{})
	if err := cmd.ParseFlags([]string{"--bmp-collector", "collector"}); err != nil {
		t.Fatal(err)
	}
	if err := o.monitor.check(); err == nil || !strings.Contains(err.Error(), "--bmp-collector") {
		t.Errorf("bad collector: %v", err)
	}
}
