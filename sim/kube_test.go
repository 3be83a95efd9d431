package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/kubeapiserver"
)

// TestFindKubeBinaries: missing binaries are an error that says where the
// sim looked and how to get them; kube-controllers is found beside the
// bgpfabric binary.
func TestFindKubeBinaries(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bgpfabric")
	exe := func(p string) {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe(bin)
	t.Setenv(kubeapiserver.EnvBinary, filepath.Join(dir, "none"))
	f := &Fabric{opts: Options{Binary: bin}}
	if _, _, err := f.findKubeBinaries(); err == nil || !strings.Contains(err.Error(), "no kube-apiserver binary (tried "+filepath.Join(dir, "none")+")") ||
		!strings.Contains(err.Error(), "make kube-apiserver") {
		t.Errorf("without kube-apiserver: %v", err)
	}
	f.opts.KubeAPIServer = filepath.Join(dir, "kube-apiserver")
	if _, _, err := f.findKubeBinaries(); err == nil || !strings.Contains(err.Error(), "is not an executable file") {
		t.Errorf("a kube-apiserver that does not exist: %v", err)
	}
	exe(f.opts.KubeAPIServer)
	if _, _, err := f.findKubeBinaries(); err == nil || !strings.Contains(err.Error(), "no bgpfabric-kube-controllers at "+filepath.Join(dir, KubeControllersBinary)) {
		t.Errorf("without kube-controllers: %v", err)
	}
	exe(filepath.Join(dir, KubeControllersBinary))
	api, kc, err := f.findKubeBinaries()
	if err != nil || api != f.opts.KubeAPIServer || kc != filepath.Join(dir, KubeControllersBinary) {
		t.Errorf("findKubeBinaries = %q, %q, %v", api, kc, err)
	}
}
