//go:build kube

package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
	"github.com/bgpfabric/bgpfabric/internal/kubetest"
)

// TestKubeControllersCommand runs `bgpfabric kube-controllers` with a
// kubeconfig against a real API server: it takes the Lease, writes a
// namespace's profile, and ends cleanly when interrupted.
func TestKubeControllersCommand(t *testing.T) {
	// client-go's logger is set before this test's own clients start
	// (the command's setting then changes nothing: a data race otherwise).
	setKlogLogger(slog.New(slog.DiscardHandler))
	s := kubetest.Start(t)
	e := etcdtest.Start(t)
	ds := e.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	var stderr bytes.Buffer
	root := newRootCmd(strings.NewReader(""), &bytes.Buffer{}, &stderr)
	root.SetArgs([]string{"--datastore", e.ClientEndpoint(), "kube-controllers",
		"--kubeconfig", s.Kubeconfig(t, kubetest.Admin), "--identity", "cmd-test"})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(runCtx) }()
	defer func() {
		stop()
		<-done
	}()

	_, rev, err := ds.List(ctx, api.KindProfile, "")
	if err != nil {
		t.Fatal(err)
	}
	w := ds.Watch(ctx, api.KindProfile, "", rev+1)
	if _, err := s.Client(t).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cmd"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for found := false; !found; {
		select {
		case ev := <-w:
			found = ev.Err == nil && ev.Type != datastore.Deleted && ev.ID.Name == "ns.cmd"
		case err := <-done:
			t.Fatalf("kube-controllers stopped: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("no profile ns.cmd\n%s", stderr.String())
		}
	}
	lease, err := s.Client(t).CoordinationV1().Leases("kube-system").Get(ctx, "bgpfabric-kube-controllers", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "cmd-test" {
		t.Errorf("Lease holder %v, want cmd-test", lease.Spec.HolderIdentity)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("kube-controllers ended with %v when interrupted\n%s", err, stderr.String())
	}
	done <- nil // for the deferred receive
}
