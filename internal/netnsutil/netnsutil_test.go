package netnsutil_test

import (
	"errors"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/internal/netnsutil"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

func TestDo(t *testing.T) {
	ns := nstest.New(t)
	var inside bool
	err := netnsutil.Do(ns.Handle, func() error {
		cur, err := netns.Get()
		if err != nil {
			return err
		}
		defer cur.Close()
		inside = cur.Equal(ns.Handle)
		return nil
	})
	if err != nil || !inside {
		t.Fatalf("Do: err %v, ran inside the namespace: %v", err, inside)
	}
	want := errors.New("boom")
	if err := netnsutil.Do(ns.Handle, func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	// The calling goroutine never left its namespace.
	cur, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if cur.Equal(ns.Handle) {
		t.Error("the caller's thread is in the test namespace")
	}
	if err := netnsutil.Do(netns.None(), func() error { return nil }); err == nil {
		t.Error("Do with a closed handle: no error")
	}
}
