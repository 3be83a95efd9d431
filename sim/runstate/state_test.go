package runstate

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestProcIdentityAndStop(t *testing.T) {
	cmd := startSleep(t)
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	p, err := Describe("sleep", cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Alive() {
		t.Fatal("a running process is not alive")
	}
	// A PID reused by another process: the start time differs.
	reused := p
	reused.Start++
	if reused.Alive() {
		t.Error("a process with another start time counts as alive")
	}
	if err := reused.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	if !p.Alive() {
		t.Fatal("Stop of a reused PID signalled the process")
	}
	start := time.Now()
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	<-waited
	if p.Alive() {
		t.Error("alive after Stop")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop took %s: it should return on the exit event", d)
	}
	if err := p.Stop(time.Second); err != nil {
		t.Errorf("Stop of a dead process: %v", err)
	}
}

func TestStateRoundTripAndLiveness(t *testing.T) {
	base := t.TempDir()
	id := NewID()
	r, err := Create(base, State{RunID: id, Fabric: "f"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unindex(id) })
	if _, err := Create(base, State{RunID: id}); err == nil {
		t.Error("creating a run twice succeeded")
	}
	if err := r.AddNamespaces("bf-"+id+"-a", "bf-"+id+"-a", "bf-"+id+".seg.lan"); err != nil {
		t.Fatal(err)
	}
	if err := r.AddProc(Proc{Name: "agent/a", PID: 1, Args: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	again, err := Open(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	st := again.State()
	if len(st.Namespaces) != 2 || len(st.Procs) != 1 || st.Owner.PID != os.Getpid() || st.Phase != PhaseBooting {
		t.Errorf("state read back: %+v", st)
	}
	if !st.Live() {
		t.Error("a run whose owner runs is not live")
	}
	st.Owner.Start++
	if st.Live() {
		t.Error("a booting run whose owner is gone is live")
	}
	st.Phase = PhaseUp
	if !st.Live() {
		t.Error("a run left up is not live")
	}
	// Slots: a second run gets the next free slot.
	id2 := NewID()
	r2, err := CreateAuto(base, State{RunID: id2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unindex(id2) })
	if got := r2.State().Slot; got != 1 {
		t.Errorf("second run's slot %d, want 1", got)
	}
	if dir, ok := indexed(id2); os.Geteuid() == 0 && (!ok || dir != r2.Dir) {
		t.Errorf("index: %q %v", dir, ok)
	}
}

// TestCrashCleanup leaves behind what a crashed sim would: a run whose
// owner is dead, with a namespace and a process, and a namespace of a run
// that has no directory at all. CleanupDead removes all of it and leaves
// a live run alone.
func TestCrashCleanup(t *testing.T) {
	nstest.RequireRoot(t)
	base := t.TempDir()

	dead, err := Create(base, State{RunID: NewID()})
	if err != nil {
		t.Fatal(err)
	}
	owner := exec.Command("true")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	ownerProc, err := Describe("sim", owner.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	owner.Wait()
	agent := startSleep(t)
	agentProc, _ := Describe("agent/n-1", agent.Process.Pid)
	deadID := dead.State().RunID
	ns := topology.NodeNetns(deadID, "n-1")
	dead.AddNamespaces(ns)
	mkns(t, ns)
	dead.AddProc(agentProc)
	dead.Update(func(s *State) { s.Owner = ownerProc })

	orphanID := NewID()
	orphan := topology.SegmentNetns(orphanID, "lan")
	mkns(t, orphan)

	live, err := Create(base, State{RunID: NewID()})
	if err != nil {
		t.Fatal(err)
	}
	liveNS := topology.NodeNetns(live.State().RunID, "n-1")
	live.AddNamespaces(liveNS)
	mkns(t, liveNS)
	t.Cleanup(func() { live.Teardown(time.Second) })

	cleaned, err := CleanupDead(base, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(cleaned) != 2 {
		t.Errorf("cleaned %v, want the dead run %s and the orphan %s", cleaned, deadID, orphanID)
	}
	for _, n := range []string{ns, orphan} {
		if _, err := os.Stat(filepath.Join(NetnsDir, n)); !os.IsNotExist(err) {
			t.Errorf("namespace %s is left (%v)", n, err)
		}
	}
	if agentProc.Alive() {
		t.Error("the dead run's agent still runs")
	}
	if _, err := os.Stat(dead.Dir); !os.IsNotExist(err) {
		t.Error("the dead run's directory is left")
	}
	if _, err := os.Stat(filepath.Join(NetnsDir, liveNS)); err != nil {
		t.Errorf("the live run's namespace was removed: %v", err)
	}
}

func mkns(t *testing.T, name string) {
	t.Helper()
	h, err := newNamedForTest(name)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	t.Cleanup(func() { netns.DeleteNamed(name) })
}
