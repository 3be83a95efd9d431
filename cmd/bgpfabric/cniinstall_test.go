package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallCNI: install-cni puts this binary into the bin directory as
// bgpfabric-cni (executable), the configuration list and the TLS files
// into the configuration directory; a configuration list that does not
// parse, or whose first plugin is not bgpfabric-cni, installs nothing.
func TestInstallCNI(t *testing.T) {
	dir := t.TempDir()
	bin, conf, tls := filepath.Join(dir, "bin"), filepath.Join(dir, "net.d"), filepath.Join(dir, "tls")
	for _, d := range []string{bin, conf, tls} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if err := os.WriteFile(filepath.Join(tls, f), []byte("pem of "+f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	install := func(conflist string) (string, int) {
		var out, errb bytes.Buffer
		code := run([]string{"install-cni", "--bin-dir", bin, "--conf-dir", conf, "--conflist", conflist, "--tls-dir", tls},
			strings.NewReader(""), &out, &errb)
		return errb.String(), code
	}
	for _, bad := range []struct{ name, conf, want string }{
		{"broken.conflist", `{"cniVersion": "1.1.0", "name": "n", "plugins": [`, "broken.conflist"},
		{"other.conflist", `{"cniVersion": "1.1.0", "name": "n", "plugins": [{"type": "bridge"}]}`, `must be "bgpfabric-cni"`},
	} {
		errs, code := install(write(bad.name, bad.conf))
		if code == 0 || !strings.Contains(errs, bad.want) {
			t.Errorf("%s: exit %d, stderr %q; want a failure naming %q", bad.name, code, errs, bad.want)
		}
		for _, d := range []string{bin, conf} {
			if es, _ := os.ReadDir(d); len(es) != 0 {
				t.Errorf("%s: %s holds %v after a refused install", bad.name, d, es)
			}
		}
	}
	good := `{"cniVersion": "1.1.0", "name": "k8s-pod-network", "plugins": [{"type": "bgpfabric-cni"}]}`
	if errs, code := install(write("10-bgpfabric.conflist", good)); code != 0 {
		t.Fatalf("install-cni: exit %d: %s", code, errs)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(exe)
	got, err := os.ReadFile(filepath.Join(bin, "bgpfabric-cni"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("bin/bgpfabric-cni: %d bytes, %v; want a copy of this binary (%d bytes)", len(got), err, len(want))
	}
	if st, err := os.Stat(filepath.Join(bin, "bgpfabric-cni")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("bin/bgpfabric-cni: %v, %v; want mode 0755", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(conf, "10-bgpfabric.conflist")); string(b) != good {
		t.Errorf("installed conflist: %q", b)
	}
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		p := filepath.Join(conf, "bgpfabric-tls", f)
		b, err := os.ReadFile(p)
		st, _ := os.Stat(p)
		if err != nil || string(b) != "pem of "+f || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %q, %v", p, b, err)
		}
	}
	if es, _ := os.ReadDir(bin); len(es) != 1 {
		t.Errorf("bin holds %v: a temporary file was left", es)
	}
}
