package main

import (
	"testing"

	"github.com/bgpfabric/bgpfabric/reflector"
)

// TestReflectorFIBFlags: --program-fib is off by default and turns the
// kernel FIB on in either mode; --fib-protocol overrides and is checked.
func TestReflectorFIBFlags(t *testing.T) {
	cmd := newReflectorCmd(&globalOptions{})
	if f := cmd.Flags().Lookup("program-fib"); f == nil || f.DefValue != "false" {
		t.Fatalf("--program-fib: %+v, want a flag defaulting to false", f)
	}
	if err := cmd.Flags().Parse([]string{"--program-fib", "--fib-protocol", "90"}); err != nil {
		t.Fatal(err)
	}
	var c reflector.Config
	(&reflectorOptions{}).applyFIB(&c)
	if c.ProgramFIB || c.FIB.Protocol != 0 {
		t.Errorf("no flags: %+v %+v", c.ProgramFIB, c.FIB)
	}
	o := &reflectorOptions{programFIB: true, fibProtocol: 90}
	o.applyFIB(&c)
	if !c.ProgramFIB || c.FIB.Protocol != 90 {
		t.Errorf("--program-fib --fib-protocol 90: %+v %+v", c.ProgramFIB, c.FIB)
	}
	c = reflector.Config{ProgramFIB: true} // from the file
	(&reflectorOptions{}).applyFIB(&c)
	if !c.ProgramFIB {
		t.Error("the file's programFIB was turned off")
	}
	if err := (&reflectorOptions{fibProtocol: 3}).checkFIB(); err == nil {
		t.Error("--fib-protocol 3 accepted")
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
