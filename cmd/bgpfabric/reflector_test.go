package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/reflector"
)

// TestReflectorFIBFlags: the command's own flags, parsed as on the command
// line, set what the engine is configured with (configuration files loaded
// as the command loads them): --program-fib is off by default and turns
// the kernel FIB on, --fib-protocol overrides the file's protocol, a
// file's programFIB stays on without the flag, and a reserved protocol is
// refused by the command before it starts anything.
func TestReflectorFIBFlags(t *testing.T) {
	dir := t.TempDir()
	file := func(name, extra string) string {
		p := filepath.Join(dir, name)
		conf := "routerID: 10.0.0.1\nasNumber: 64512\nlisten: [\"127.0.0.1:0\"]\n" + extra
		if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := file("plain.yaml", "")
	withFIB := file("fib.yaml", "programFIB: true\nfib: {protocol: 77}\n")
	for _, tc := range []struct {
		name         string
		args         []string
		file         string
		wantFIB      bool
		wantProtocol uint8
	}{
		{"defaults", nil, plain, false, 0},
		{"--program-fib", []string{"--program-fib"}, plain, true, 0},
		{"--program-fib --fib-protocol 90", []string{"--program-fib", "--fib-protocol", "90"}, plain, true, 90},
		{"file's programFIB", nil, withFIB, true, 77},
		{"file's programFIB, --fib-protocol 90", []string{"--fib-protocol", "90"}, withFIB, true, 90},
	} {
		cmd, o := reflectorCommand(&globalOptions{})
		if err := cmd.Flags().Parse(append([]string{"--config", tc.file}, tc.args...)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := o.checkFIB(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		c, err := reflector.LoadConfigFile(o.configFile)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		o.engineConfig(nil, false)(&c)
		if c.ProgramFIB != tc.wantFIB || c.FIB.Protocol != tc.wantProtocol {
			t.Errorf("%s: engine configured with ProgramFIB %v, FIB protocol %d; want %v, %d",
				tc.name, c.ProgramFIB, c.FIB.Protocol, tc.wantFIB, tc.wantProtocol)
		}
	}

	// The whole command refuses a protocol below 5 (the kernel's and
	// static routes'), naming the flag.
	// (--gc-percent 100: Go's default, so that the test binary's collector
	// stays as it was.)
	cmd := newRootCmd(strings.NewReader(""), io.Discard, io.Discard)
	cmd.SetArgs([]string{"reflector", "--config", plain, "--http-addr", "", "--gc-percent", "100", "--fib-protocol", "3"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cmd.ExecuteContext(ctx); err == nil || !strings.Contains(err.Error(), "--fib-protocol") {
		t.Errorf("reflector --fib-protocol 3: %v, want an error naming --fib-protocol", err)
	}
}

func TestParseByteSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"1048576", 1 << 20}, {"512MiB", 512 << 20}, {"2GiB", 2 << 30}, {"500MB", 500e6}, {"64 KiB", 64 << 10}, {"10B", 10},
	} {
		if got, err := parseByteSize(c.in); err != nil || got != c.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1GiB", "0", "1TiB", "1.5GiB", "99999999999GiB"} {
		if n, err := parseByteSize(bad); err == nil {
			t.Errorf("parseByteSize(%q) = %d, want an error", bad, n)
		}
	}
}
