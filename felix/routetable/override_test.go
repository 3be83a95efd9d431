package routetable

import (
	"context"
	"strings"
	"testing"
)

// TestOverrides: felix overrides the BGP router's route on a prefix it
// wants (its own block, learned back from a peer), while without the
// override, and for any other protocol, the route is a conflict.
func TestOverrides(t *testing.T) {
	block := Route{Dst: pfx("10.65.0.0/26"), Type: TypeBlackhole}
	learned := KernelRoute{Table: 254, Protocol: ProtoRouter, Type: TypeUnicast, Dst: pfx("10.65.0.0/26"), Gateway: addr("192.168.0.2"), LinkIndex: 2}
	other := KernelRoute{Table: 254, Protocol: 186, Type: TypeUnicast, Dst: pfx("10.65.0.0/26"), Gateway: addr("192.168.0.2"), LinkIndex: 2}
	for _, tc := range []struct {
		name      string
		overrides []uint8
		held      KernelRoute
		wantErr   string
		want      string
	}{
		{"router route overridden", []uint8{ProtoRouter}, learned, "", lines("blackhole 10.65.0.0/26 proto 80")},
		{"router route without the override", nil, learned, "belongs to protocol 81", lines("10.65.0.0/26 via 192.168.0.2 dev eth0 proto 81")},
		{"another protocol is not overridden", []uint8{ProtoRouter}, other, "belongs to protocol 186", lines("10.65.0.0/26 via 192.168.0.2 dev eth0 proto 186")},
	} {
		for _, when := range []string{"before start", "after the resync"} {
			t.Run(tc.name+" "+when, func(t *testing.T) {
				f := NewFake()
				f.AddLink("eth0", true)
				if when == "before start" {
					f.PutRoute(tc.held)
				}
				rt, err := New(Config{Overrides: tc.overrides}, f)
				if err != nil {
					t.Fatal(err)
				}
				if err := rt.Set([]Route{block}); err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if err := rt.resync(ctx); err != nil {
					t.Fatal(err)
				}
				if when == "after the resync" {
					f.PutRoute(tc.held) // e.g. the router installs it meanwhile
				}
				err = rt.Apply(ctx)
				switch {
				case tc.wantErr == "" && err != nil:
					t.Errorf("Apply: %v", err)
				case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
					t.Errorf("Apply error %v, want one containing %q", err, tc.wantErr)
				}
				wantState(t, f, tc.want)
			})
		}
	}
	if _, err := New(Config{Overrides: []uint8{4}}, NewFake()); err == nil {
		t.Error("overriding static routes (protocol 4) was accepted")
	}
}
