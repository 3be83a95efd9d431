package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
)

// TestTLSFlagsNeedHTTPS: TLS flags with an endpoint that would carry the
// traffic in plaintext are refused, naming the flag.
func TestTLSFlagsNeedHTTPS(t *testing.T) {
	for _, tc := range []struct {
		datastore string
		flags     []string
		want      string
	}{
		{"http://127.0.0.1:1", []string{"--etcd-cert", "/c.pem", "--etcd-key", "/k.pem"}, "--etcd-cert: TLS needs https:// endpoints, and --datastore has http://127.0.0.1:1"},
		{"unix:///nonexistent.sock", []string{"--etcd-ca", "/ca.pem"}, "--etcd-ca: TLS needs https:// endpoints, and --datastore has unix:///nonexistent.sock"},
		{"https://127.0.0.1:1,http://127.0.0.1:2", []string{"--etcd-key", "/k.pem"}, "--etcd-key: TLS needs https:// endpoints, and --datastore has http://127.0.0.1:2"},
	} {
		c := cli{t: t, endpoint: tc.datastore}
		if errs := c.fails("", append(tc.flags, "get", "nodes")...); !strings.Contains(errs, tc.want) {
			t.Errorf("%v with %s: %s, want %q", tc.flags, tc.datastore, errs, tc.want)
		}
	}
}

// TestEtcdAuthFlags: against an etcd with authentication enabled, the
// username with the password from a file or from the environment works;
// a wrong password, a missing one and two sources are errors that say so.
func TestEtcdAuthFlags(t *testing.T) {
	e := etcdtest.Start(t)
	etcdtest.EnableAuth(t, e.Client(t), "s3cret")
	c := cli{t: t, endpoint: e.ClientEndpoint()}
	dir := t.TempDir()
	write := func(name, pw string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, bad := write("good", "s3cret"), write("bad", "guess")

	c.ok(fabric, "--etcd-username", "root", "--etcd-password-file", good, "apply", "-f", "-")
	if out := c.ok("", "--etcd-username", "root", "--etcd-password-file", good, "get", "nodes"); !strings.Contains(out, "node-1") {
		t.Errorf("get nodes with a password file:\n%s", out)
	}
	if errs := c.fails("", "--etcd-username", "root", "--etcd-password-file", bad, "get", "nodes"); !strings.Contains(errs, `user "root": wrong username or password`) {
		t.Errorf("a wrong password: %s", errs)
	}
	if errs := c.fails("", "get", "nodes"); !strings.Contains(errs, "give a username and password") {
		t.Errorf("no credentials: %s", errs)
	}
	if errs := c.fails("", "--etcd-username", "root", "get", "nodes"); !strings.Contains(errs, "needs a password, from --etcd-password-file or BGPFABRIC_ETCD_PASSWORD") {
		t.Errorf("username without password: %s", errs)
	}

	t.Setenv("BGPFABRIC_ETCD_PASSWORD", "s3cret")
	if out := c.ok("", "--etcd-username", "root", "get", "nodes"); !strings.Contains(out, "node-1") {
		t.Errorf("get nodes with the password from the environment:\n%s", out)
	}
	if errs := c.fails("", "--etcd-username", "root", "--etcd-password-file", good, "get", "nodes"); !strings.Contains(errs, "both set") {
		t.Errorf("password file and environment: %s", errs)
	}
	if errs := c.fails("", "get", "nodes"); !strings.Contains(errs, "--etcd-username: required") {
		t.Errorf("password without username: %s", errs)
	}
}
