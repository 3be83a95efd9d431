package nstest

import (
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/internal/netnsutil"
)

func TestRootRule(t *testing.T) {
	for _, tc := range []struct {
		euid int
		ci   string
		want verdict
	}{
		{0, "", mayRun},
		{0, "true", mayRun},
		{1000, "", mustSkip},
		{1000, "false", mustSkip},
		{1000, "1", mustSkip},
		{1000, "true", mustFail},
	} {
		if got := rootRule(tc.euid, tc.ci); got != tc.want {
			t.Errorf("rootRule(%d, %q) = %v, want %v", tc.euid, tc.ci, got, tc.want)
		}
	}
}

func TestNewIsFreshAndRemoved(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		ns := New(t)
		name = ns.Name
		if !strings.HasPrefix(name, NamePrefix) {
			t.Errorf("name %q lacks prefix %q", name, NamePrefix)
		}
		if _, err := os.Stat("/run/netns/" + name); err != nil {
			t.Errorf("namespace not named: %v", err)
		}
		links, err := ns.Netlink.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		if len(links) != 1 || links[0].Attrs().Name != "lo" || links[0].Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("links = %v, want only lo, up", links)
		}
		if other := New(t); other.Name == name {
			t.Errorf("two namespaces named %q", name)
		}
	})
	if name == "" {
		t.Skip("inner test did not run")
	}
	if _, err := os.Stat("/run/netns/" + name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace %s still exists after cleanup (stat: %v)", name, err)
	}
}

func TestDoRunsInside(t *testing.T) {
	ns := New(t)
	outside, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	err = ns.Do(func() error {
		inside, err := netns.Get()
		if err != nil {
			return err
		}
		defer inside.Close()
		if !inside.Equal(ns.Handle) {
			t.Errorf("Do ran in %v, want %v", inside, ns.Handle)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantErr := errors.New("boom")
	if err := ns.Do(func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("Do returned %v, want %v", err, wantErr)
	}
	after, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if !after.Equal(outside) {
		t.Errorf("caller's thread moved to %v", after)
	}
}

func TestVeth(t *testing.T) {
	a, b := New(t), New(t)
	ia, ib := Veth(t, a, "va", b, "vb")
	for _, end := range []struct {
		ns    *NS
		name  string
		index int
	}{{a, "va", ia}, {b, "vb", ib}} {
		link, err := end.ns.Netlink.LinkByName(end.name)
		if err != nil {
			t.Fatalf("%s in %s: %v", end.name, end.ns.Name, err)
		}
		if link.Attrs().Index != end.index || link.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: index %d flags %v, want index %d and up", end.name, link.Attrs().Index, link.Attrs().Flags, end.index)
		}
	}

	// Both ends in one namespace.
	Veth(t, a, "v0", a, "v1")
	if _, err := a.Netlink.LinkByName("v1"); err != nil {
		t.Error(err)
	}
	// Nothing leaked into the test's own namespace.
	if _, err := netlink.LinkByName("va"); err == nil {
		t.Error("va exists outside the test namespaces")
	}
}

// TestSweepRemovesDeadOwners: a namespace named for a process that no
// longer exists is removed by the next New; one of a live process stays.
func TestSweepRemovesDeadOwners(t *testing.T) {
	RequireRoot(t)
	// PID 2^22+1 is above the kernel's maximum PID: never a live process.
	dead := NamePrefix + "4194305-deadbeef"
	if err := netnsutil.OnThread(func() error {
		h, err := netns.NewNamed(dead)
		if err == nil {
			h.Close()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.DeleteNamed(dead) })
	sweep()
	if _, err := os.Stat(netnsDir + "/" + dead); !os.IsNotExist(err) {
		t.Errorf("namespace %s of a dead process survived the sweep: %v", dead, err)
	}
	live := New(t)
	sweep()
	if _, err := os.Stat(netnsDir + "/" + live.Name); err != nil {
		t.Errorf("the sweep removed this process's namespace %s: %v", live.Name, err)
	}
	if pid, ok := ownerPID(live.Name); !ok || pid != os.Getpid() {
		t.Errorf("name %s does not carry this process's PID", live.Name)
	}
}

// TestRequireCommand finds an installed program and stops the test for a
// missing one: a skip, or a failure under CI=true.
func TestRequireCommand(t *testing.T) {
	if p := RequireCommand(t, "sh"); p == "" {
		t.Error("RequireCommand(sh) returned no path")
	}
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		var skipped, failed bool
		done := make(chan struct{})
		rec := &recorder{skip: func() { skipped = true }, fail: func() { failed = true }}
		go func() {
			defer close(done)
			RequireCommand(rec, "bgpfabric-no-such-program")
			rec.Error("RequireCommand returned for a missing program")
		}()
		<-done
		if want := ci == "true"; failed != want || skipped == want {
			t.Errorf("CI=%q: failed %v, skipped %v; want failed %v", ci, failed, skipped, want)
		}
	}
}

// recorder is a testing.TB whose Skip and Fatal end its goroutine.
type recorder struct {
	testing.TB
	skip, fail func()
}

func (r *recorder) Helper()               {}
func (r *recorder) Error(...any)          { r.fail() }
func (r *recorder) Skipf(string, ...any)  { r.skip(); runtime.Goexit() }
func (r *recorder) Fatalf(string, ...any) { r.fail(); runtime.Goexit() }
