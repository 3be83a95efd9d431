package datastore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
)

// TestNewAuth: against an etcd with authentication enabled, the right
// credentials work and wrong or missing ones fail saying so.
func TestNewAuth(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	e, admin := newEnv(t)
	etcdtest.EnableAuth(t, admin, "s3cret")
	ep := []string{e.ClientEndpoint()}

	c, err := datastore.New(ctx, datastore.Config{Endpoints: ep, Username: "root", Password: "s3cret"})
	if err != nil {
		t.Fatalf("New with the right credentials: %v", err)
	}
	defer c.Close()
	if _, err := c.Create(ctx, node("n1")); err != nil {
		t.Fatalf("Create as root: %v", err)
	}
	if _, err := c.Get(ctx, "Node", "", "n1"); err != nil {
		t.Fatalf("Get as root: %v", err)
	}

	for _, tc := range []struct {
		name, user, password, want string
	}{
		{"wrong password", "root", "guess", `user "root": wrong username or password`},
		{"unknown user", "nobody", "s3cret", `user "nobody": wrong username or password`},
		{"no credentials", "", "", "authentication enabled: give a username and password"},
	} {
		_, err := datastore.New(ctx, datastore.Config{Endpoints: ep, Username: tc.user, Password: tc.password})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// TestNewRefusesPlaintextWithTLS: TLS files with an endpoint that etcd's
// client would serve without TLS are refused before any connection.
func TestNewRefusesPlaintextWithTLS(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	for _, tc := range []struct {
		name string
		cfg  datastore.Config
	}{
		{"http with client cert", datastore.Config{Endpoints: []string{"http://127.0.0.1:2379"}, CertFile: "/c.pem", KeyFile: "/k.pem"}},
		{"unix with CA", datastore.Config{Endpoints: []string{"unix:///run/x.sock"}, CAFile: "/ca.pem"}},
		{"https and http", datastore.Config{Endpoints: []string{"https://etcd-1:2379", "http://etcd-2:2379"}, CAFile: "/ca.pem"}},
	} {
		_, err := datastore.New(ctx, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), "is not https://") {
			t.Errorf("%s: New = %v, want a refusal naming the plaintext endpoint", tc.name, err)
		}
	}
	_, err := datastore.New(ctx, datastore.Config{Endpoints: []string{"unix:///run/x.sock"}, Username: "root"})
	if err == nil || !strings.Contains(err.Error(), "needs a password") {
		t.Errorf("username without password: New = %v, want a refusal", err)
	}
}

func TestReadPasswordFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ content, want string }{
		{"pw\n", "pw"},
		{"pw\r\n", "pw"},
		{"pw", "pw"},
		{" pw with spaces \n\n", " pw with spaces \n"},
	} {
		got, err := datastore.ReadPasswordFile(write("p", tc.content))
		if err != nil || got != tc.want {
			t.Errorf("ReadPasswordFile(%q) = %q, %v; want %q", tc.content, got, err, tc.want)
		}
	}
	if _, err := datastore.ReadPasswordFile(write("empty", "\n")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v, want an error", err)
	}
	if _, err := datastore.ReadPasswordFile(write("long", strings.Repeat("x", 5000))); err == nil {
		t.Errorf("a 5000-byte file: no error")
	}
	if _, err := datastore.ReadPasswordFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}
