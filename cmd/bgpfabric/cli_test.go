package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
)

// cli runs the binary's command line in-process against a datastore.
type cli struct {
	t        *testing.T
	endpoint string
}

func (c cli) run(stdin string, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{"--datastore", c.endpoint, "--dial-timeout", "20s"}, args...)
	code = run(full, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// ok runs args and fails the test unless they succeed.
func (c cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("bgpfabric %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (c cli) fails(stdin string, args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(stdin, args...)
	if code == 0 {
		c.t.Fatalf("bgpfabric %s succeeded, want failure\nstdout:\n%s", strings.Join(args, " "), out)
	}
	return errs
}

const fabric = `apiVersion: bgpfabric.io/v1
kind: Node
metadata:
  name: node-1
  labels: {rack: r1}
spec:
  bgp: {ipv4Address: 10.0.0.1/24, asNumber: 65001}
---
kind: IPPool
metadata: {name: pool-a}
spec: {cidr: 192.168.0.0/16}
---
kind: NetworkPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  selector: app == 'web'
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [80]}}]
`

func TestApplyGetDeleteRoundTrip(t *testing.T) {
	c := cli{t: t, endpoint: etcdtest.Start(t).ClientEndpoint()}

	out := c.ok(fabric, "apply", "-f", "-")
	for _, want := range []string{"nodes/node-1 applied", "ippools/pool-a applied", "networkpolicies/shop/allow-web applied"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}

	table := c.ok("", "get", "nodes")
	if !strings.Contains(table, "node-1") || !strings.Contains(table, "65001") || !strings.Contains(table, "10.0.0.1/24") {
		t.Errorf("get nodes table:\n%s", table)
	}
	if out := c.ok("", "get", "ippool", "pool-a"); !strings.Contains(out, "192.168.0.0/16") || !strings.Contains(out, "26") {
		t.Errorf("get ippool shows no CIDR and default block size:\n%s", out)
	}
	if out := c.ok("", "get", "netpol"); strings.Contains(out, "allow-web") {
		t.Errorf("get netpol in namespace default shows shop's policy:\n%s", out)
	}
	if out := c.ok("", "get", "netpol", "-A"); !strings.Contains(out, "shop") || !strings.Contains(out, "allow-web") {
		t.Errorf("get netpol -A:\n%s", out)
	}

	// JSON output is what apply takes back: defaults are filled in and the
	// server-side metadata is there.
	var node map[string]any
	if err := json.Unmarshal([]byte(c.ok("", "get", "node", "node-1", "-o", "json")), &node); err != nil {
		t.Fatal(err)
	}
	meta := node["metadata"].(map[string]any)
	if meta["uid"] == "" || meta["resourceVersion"] == "" {
		t.Errorf("metadata lacks uid or resourceVersion: %v", meta)
	}
	if rid := node["spec"].(map[string]any)["bgp"].(map[string]any)["routerID"]; rid != "10.0.0.1" {
		t.Errorf("routerID default = %v, want 10.0.0.1", rid)
	}
	yamlOut := c.ok("", "get", "ippools", "-o", "yaml")
	c.ok(yamlOut, "apply", "-f", "-") // re-applying what get printed works

	// A file argument works as well as stdin.
	f := filepath.Join(t.TempDir(), "more.yaml")
	if err := os.WriteFile(f, []byte("kind: IPPool\nmetadata: {name: pool-b}\nspec: {cidr: 'fd00:1::/112'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("", "apply", "-f", f)
	if out := c.ok("", "get", "ippool", "pool-b", "-o", "yaml"); !strings.Contains(out, "blockSize: 122") {
		t.Errorf("IPv6 pool not defaulted to /122 blocks:\n%s", out)
	}

	c.ok("", "delete", "ippool", "pool-b")
	c.ok("", "delete", "networkpolicy", "allow-web", "-n", "shop")
	if errs := c.fails("", "get", "ippool", "pool-b"); !strings.Contains(errs, "not found") {
		t.Errorf("get of a deleted pool: %s", errs)
	}
	if errs := c.fails("", "delete", "ippool", "pool-b"); !strings.Contains(errs, "not found") {
		t.Errorf("second delete: %s", errs)
	}
	// The rest by file: allow-web is gone already, which is an error unless
	// --ignore-not-found says otherwise.
	if errs := c.fails(fabric, "delete", "-f", "-"); !strings.Contains(errs, "allow-web: not found") {
		t.Errorf("delete -f of a file with a missing resource: %s", errs)
	}
	c.ok(fabric, "delete", "-f", "-", "--ignore-not-found")
	if out := c.ok("", "get", "nodes"); strings.Contains(out, "node-1") {
		t.Errorf("node-1 not deleted:\n%s", out)
	}
}

func TestBadDocumentChangesNothing(t *testing.T) {
	c := cli{t: t, endpoint: etcdtest.Start(t).ClientEndpoint()}
	c.ok("kind: IPPool\nmetadata: {name: keep}\nspec: {cidr: 10.1.0.0/16, blockSize: 24}\n", "apply", "-f", "-")

	// Document 2 changes the pool that exists; document 3 is invalid. The
	// whole file is refused and the stored pool keeps its block size.
	bad := `kind: Node
metadata: {name: new-node}
spec: {bgp: {ipv4Address: 10.0.0.9/24}}
---
kind: IPPool
metadata: {name: keep}
spec: {cidr: 10.1.0.0/16, blockSize: 28}
---
kind: BGPPeer
metadata: {name: broken}
spec: {peerIP: 10.0.0.300, asNumber: 65000}
`
	errs := c.fails(bad, "apply", "-f", "-")
	for _, want := range []string{"document 3 (line 9)", "BGPPeer broken", "spec.peerIP"} {
		if !strings.Contains(errs, want) {
			t.Errorf("error lacks %q:\n%s", want, errs)
		}
	}
	if out := c.ok("", "get", "nodes"); strings.Contains(out, "new-node") {
		t.Errorf("a node from the refused file was written:\n%s", out)
	}
	if out := c.ok("", "get", "ippool", "keep", "-o", "yaml"); !strings.Contains(out, "blockSize: 24") {
		t.Errorf("the pool was changed by the refused file:\n%s", out)
	}

	// Unknown fields, unknown kinds and status kinds are refused too.
	if errs := c.fails("kind: Node\nmetadata: {name: x}\nspec: {bgp: {ipv4address: 10.0.0.1/24}}\n", "apply", "-f", "-"); !strings.Contains(errs, `unknown field "ipv4address"`) {
		t.Errorf("unknown field: %s", errs)
	}
	if errs := c.fails("kind: FelixStatus\nmetadata: {name: node-1}\n", "apply", "-f", "-"); !strings.Contains(errs, "status record written by the agents") {
		t.Errorf("status kind: %s", errs)
	}
	if errs := c.fails("", "get", "routers"); !strings.Contains(errs, `unknown kind "routers"`) {
		t.Errorf("unknown kind: %s", errs)
	}
}

func TestUnreachableDatastore(t *testing.T) {
	c := cli{t: t, endpoint: "unix://" + filepath.Join(t.TempDir(), "nobody.sock")}
	var out, errb bytes.Buffer
	code := run([]string{"--datastore", c.endpoint, "--dial-timeout", "1s", "get", "nodes"}, strings.NewReader(""), &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "nobody.sock") {
		t.Errorf("exit %d, stderr %q: want a failure naming the endpoint", code, errb.String())
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"version"}, nil, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	for _, want := range []string{"bgpfabric ", "gobgp ", "etcd ", "go "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("version output lacks %q:\n%s", want, out.String())
		}
	}
}
