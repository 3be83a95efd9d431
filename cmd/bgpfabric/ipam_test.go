package main

import (
	"context"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
	"github.com/bgpfabric/bgpfabric/ipam"
)

func TestIPAMShowCheckRelease(t *testing.T) {
	e := etcdtest.Start(t)
	c := cli{t: t, endpoint: e.ClientEndpoint()}
	c.ok(`kind: Node
metadata: {name: node-1}
---
kind: IPPool
metadata: {name: pool-a}
spec: {cidr: 10.9.0.0/24, blockSize: 28}
`, "apply", "-f", "-")
	ic, err := ipam.New(ipam.Config{Store: e.Client(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := ic.AutoAssign(ctx, ipam.AssignArgs{Node: "node-1", Handle: "net:c1:eth0", Num4: 2,
		Attrs: map[string]string{ipam.AttrNamespace: "default", ipam.AttrEndpoint: "gone"}})
	if err != nil {
		t.Fatal(err)
	}

	show := c.ok("", "ipam", "show")
	for _, want := range []string{"pool-a", "10.9.0.0/24", "/28", "node-1", "all()"} {
		if !strings.Contains(show, want) {
			t.Errorf("ipam show lacks %q:\n%s", want, show)
		}
	}
	out, _, code := c.run("", "ipam", "check")
	if code == 0 || strings.Count(out, "leaked") != 2 || !strings.Contains(out, "workload endpoint default/gone does not exist") {
		t.Errorf("ipam check: exit %d, output:\n%s", code, out)
	}
	if errs := c.fails("", "ipam", "release"); !strings.Contains(errs, "exactly one of") {
		t.Errorf("release without target: %s", errs)
	}
	out = c.ok("", "ipam", "release", "--ip", got.IPv4[0].String())
	if !strings.Contains(out, got.IPv4[0].String()+" released") {
		t.Errorf("release --ip: %s", out)
	}
	out = c.ok("", "ipam", "release", "--handle", "net:c1:eth0")
	if !strings.Contains(out, got.IPv4[1].String()+" released") {
		t.Errorf("release --handle: %s", out)
	}
	out = c.ok("", "ipam", "release", "--handle", "net:c1:eth0")
	if !strings.Contains(out, "nothing to release") {
		t.Errorf("second release --handle: %s", out)
	}
	if out := c.ok("", "ipam", "check"); !strings.Contains(out, "no problems found") {
		t.Errorf("check after release: %s", out)
	}
	out = c.ok("", "ipam", "release", "--node", "node-1")
	if !strings.Contains(out, "deleted") {
		t.Errorf("release --node: %s", out)
	}
}
