package kubecontrollers

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
	"github.com/bgpfabric/bgpfabric/internal/kubetest"
)

// BenchmarkInitialSyncProcess is BenchmarkInitialSync with the controller
// as its own process: the real bin/bgpfabric-kube-controllers (or
// $BGPFABRIC_KUBE_CONTROLLERS; built into a temporary directory when
// neither exists) against the test API server and a fresh datastore.
// Measured: the time until the sync is complete (s/sync), the process's
// resident memory then (rss-MB, VmRSS) and its peak (hwm-MB, VmHWM),
// and its resident memory again 5 s later (rss-idle-MB). Run with
// -benchtime 1x.
func BenchmarkInitialSyncProcess(b *testing.B) {
	b.StopTimer()
	bin := kubeControllersBinary(b)
	s, _ := benchAPIServer(b)
	kubeconfig := s.Kubeconfig(b, kubetest.Admin)
	for range b.N {
		e := etcdtest.Start(b)
		ds := e.Client(b)
		benchEndpoints(b, ds)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		_, rev, err := ds.List(ctx, api.KindNode, "")
		if err != nil {
			b.Fatal(err)
		}
		w := ds.Watch(ctx, "", "", rev+1)
		cmd := exec.Command(bin, "--kubeconfig", kubeconfig, "--leader-elect=false", "--datastore", e.ClientEndpoint(), "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		b.StartTimer()
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		waitSynced(b, w)
		elapsed := time.Since(start)
		b.StopTimer()
		rss, hwm := procMemory(b, cmd.Process.Pid)
		idle := time.NewTimer(5 * time.Second) // a fixed settling time is what is measured, not a wait for state
		<-idle.C
		rssIdle, _ := procMemory(b, cmd.Process.Pid)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		cancel()
		b.ReportMetric(elapsed.Seconds(), "s/sync")
		b.ReportMetric(rss, "rss-MB")
		b.ReportMetric(hwm, "hwm-MB")
		b.ReportMetric(rssIdle, "rss-idle-MB")
	}
}

// kubeControllersBinary finds or builds bgpfabric-kube-controllers.
func kubeControllersBinary(b *testing.B) string {
	if p := os.Getenv("BGPFABRIC_KUBE_CONTROLLERS"); p != "" {
		return p
	}
	if p, err := filepath.Abs("../bin/bgpfabric-kube-controllers"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p := filepath.Join(b.TempDir(), "bgpfabric-kube-controllers")
	out, err := exec.Command("go", "build", "-trimpath", "-tags", "kube", "-o", p, "../cmd/bgpfabric").CombinedOutput()
	if err != nil {
		b.Fatalf("building bgpfabric-kube-controllers: %v\n%s", err, out)
	}
	return p
}

// procMemory returns a process's VmRSS and VmHWM in MiB.
func procMemory(b *testing.B, pid int) (rss, hwm float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			b.Fatalf("/proc/%d/status %s: %v", pid, k, err)
		}
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
	}
	return rss, hwm
}
