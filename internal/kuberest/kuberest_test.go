package kuberest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadErrorsNameTheField: what the client cannot use is refused with
// the kubeconfig's field path.
func TestLoadErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	ok := "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: %q}\nusers:\n- name: u\n  user: %s\n"
	for _, tc := range []struct {
		name, server, user, want string
	}{
		{"http server", "http://127.0.0.1:6443", "{token: x}", `clusters[0].cluster.server: "http://127.0.0.1:6443" must be an https:// URL`},
		{"exec", "https://127.0.0.1:6443", "{exec: {command: aws}}", "users[0].user.exec: credential plugins are not supported"},
		{"auth provider", "https://127.0.0.1:6443", "{auth-provider: {name: gcp}}", "users[0].user.auth-provider: auth providers are not supported"},
		{"basic", "https://127.0.0.1:6443", "{username: admin, password: x}", "users[0].user.username: basic authentication is not supported"},
		{"token file", "https://127.0.0.1:6443", "{tokenFile: missing}", "users[0].user.tokenFile: open " + filepath.Join(dir, "missing")},
		{"cert without key", "https://127.0.0.1:6443", "{client-certificate-data: eA==}", "users[0].user.client-certificate and client-key must be given together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "kc")
			if err := os.WriteFile(p, []byte(strings.Replace(strings.Replace(ok, "%q", `"`+tc.server+`"`, 1), "%s", tc.user, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	p := filepath.Join(dir, "nocontext")
	os.WriteFile(p, []byte("apiVersion: v1\nkind: Config\ncurrent-context: gone\n"), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), `current-context "gone" names no entry of contexts`) {
		t.Errorf("Load without the context: %v", err)
	}
}
