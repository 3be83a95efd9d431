package felix

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// childEnv, when set in the environment, makes the test binary run an
// agent (on an in-memory kernel) against the etcd endpoint it names, until
// it is killed: the "process" whose crash TestStatusExpiresAfterCrash
// simulates.
const childEnv = "BGPFABRIC_FELIX_TEST_CHILD"

func TestMain(m *testing.M) {
	if ep := os.Getenv(childEnv); ep != "" {
		os.Exit(runChild(ep))
	}
	os.Exit(m.Run())
}

func runChild(endpoint string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	c, err := datastore.New(ctx, datastore.Config{Endpoints: []string{endpoint}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	k := newFakeKernel()
	cfg := k.config(nil, c)
	cfg.StatusTTL = 2 * time.Second
	a, err := New(cfg)
	if err == nil {
		err = a.Run(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestStatusExpiresAfterCrash: the FelixStatus of an agent whose process
// dies (SIGKILL: no cleanup at all) disappears when its lease expires.
func TestStatusExpiresAfterCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a lease to expire")
	}
	env := startEtcd(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+env.endpoint())
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	env.waitStatus(t, "child running", inSyncWith(0))
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed := time.Now()
	env.waitStatus(t, "status expired", nil)
	t.Logf("status expired %v after the kill", time.Since(killed).Round(100*time.Millisecond))
}

// TestAgentCleanStop: a clean stop leaves the routes in place (a restart
// must not drop traffic) and deletes the status at once; the next run
// adopts the routes without rewriting them.
func TestAgentCleanStop(t *testing.T) {
	env := startEtcd(t)
	k := newFakeKernel()
	k.addLink("wla")
	env.create(t, wep("a", nodeName, "wla", "10.65.0.1/32"), block("10.65.0.0/26", nodeName))
	cfg := k.config(t, env.client)
	cfg.StatusTTL = time.Hour // only a revoke can delete it in time
	stop := runAgent(t, cfg)
	env.waitStatus(t, "programmed", inSyncWith(2))
	before := k.routes.Render()
	stop()
	env.waitStatus(t, "deleted by the clean stop", nil)
	if after := k.routes.Render(); after != before || !strings.Contains(after, "10.65.0.1 dev wla proto 80") {
		t.Errorf("routes after a clean stop:\n%s\nwant as before:\n%s", after, before)
	}

	// A restart adopts them: no route is written again.
	writes := k.routes.Stats().Ops
	k2 := &fakeKernel{routes: k.routes, ifaces: k.ifaces, links: make(chan routetable.LinkUpdate, 64)}
	links, err := k.routes.LinkList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Name != "lo" {
			k2.links <- routetable.LinkUpdate{Link: l}
		}
	}
	runAgent(t, k2.config(t, env.client))
	env.waitStatus(t, "restarted", inSyncWith(2))
	if ops := k.routes.Stats().Ops - writes; ops != 0 {
		t.Errorf("restart wrote %d route ops, want 0", ops)
	}
}

// TestAgentSurvivesDatastoreLoss: while etcd is down the programmed routes
// stay (nothing is deleted); when it is back the agent catches up.
func TestAgentSurvivesDatastoreLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts etcd")
	}
	env := startEtcd(t)
	k := newFakeKernel()
	k.addLink("wla")
	env.create(t, wep("a", nodeName, "wla", "10.65.0.1/32"))
	stop := runAgent(t, k.config(t, env.client))
	defer stop() // before the restarted etcd stops (cleanups run later)
	env.waitStatus(t, "programmed", inSyncWith(1))
	ops := k.routes.Stats().Ops
	before := k.routes.Render()

	if err := env.etcd.Close(); err != nil {
		t.Fatal(err)
	}
	// While it is down, links still come and go and are handled.
	k.addLink("wlb")
	env.start(t)
	env.create(t, wep("b", nodeName, "wlb", "10.65.0.2/32"))
	env.waitStatus(t, "caught up", inSyncWith(2))
	if got := k.routes.Render(); !strings.Contains(got, before) || !strings.Contains(got, "10.65.0.2 dev wlb") {
		t.Errorf("routes after the outage:\n%s\nwant those before:\n%s\nand b's", got, before)
	}
	if n := k.routes.Stats().Ops - ops; n != 1 {
		t.Errorf("%d route ops across the outage, want 1 (adding b's)", n)
	}
}
