package runstate

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// fakeNeigh is a neighLimits on two files standing in for the sysctls.
func fakeNeigh(t *testing.T, v4, v6 int, live map[string]bool) (neighLimits, []string) {
	t.Helper()
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "v4"), filepath.Join(dir, "v6")}
	for i, v := range []int{v4, v6} {
		if err := os.WriteFile(files[i], []byte(strconv.Itoa(v)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return neighLimits{file: filepath.Join(dir, "rec", "neigh.json"), sysctls: files, live: func(id string) bool { return live[id] }}, files
}

func sysctl(t *testing.T, path string) int {
	t.Helper()
	v, err := readInt(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNeighLimitRaiseAndRestore(t *testing.T) {
	live := map[string]bool{"a": true, "b": true}
	n, files := fakeNeigh(t, 1024, 4096, live)

	// Run a needs 5000: both raised; the values found are recorded.
	ch, err := n.raise("a", 5000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 2 || ch[0].From != 1024 || ch[0].To != 5000 || ch[1].From != 4096 {
		t.Fatalf("changes = %v", ch)
	}
	// Run b needs less: nothing changes, but it holds the raise too.
	ch, err = n.raise("b", 2000)
	if err != nil || len(ch) != 0 {
		t.Fatalf("second raise: %v, %v", ch, err)
	}
	if err := n.release("a"); err != nil {
		t.Fatal(err)
	}
	if got := sysctl(t, files[0]); got != 5000 {
		t.Fatalf("restored to %d while run b still runs; want 5000 kept", got)
	}
	if err := n.release("b"); err != nil {
		t.Fatal(err)
	}
	if a, b := sysctl(t, files[0]), sysctl(t, files[1]); a != 1024 || b != 4096 {
		t.Fatalf("after the last run, limits = %d, %d; want the original 1024, 4096", a, b)
	}
	if _, err := os.Stat(n.file); !os.IsNotExist(err) {
		t.Fatalf("record left behind: %v", err)
	}
	// Nothing raised: releasing is a no-op.
	if err := n.release("c"); err != nil {
		t.Fatal(err)
	}
}

// A holder that died without tearing down does not keep the raise
// forever, and a value someone set by hand since is left alone.
func TestNeighLimitDeadHolderAndManualChange(t *testing.T) {
	live := map[string]bool{"a": true, "dead": true}
	n, files := fakeNeigh(t, 1024, 1024, live)
	if _, err := n.raise("dead", 3000); err != nil {
		t.Fatal(err)
	}
	if _, err := n.raise("a", 3000); err != nil {
		t.Fatal(err)
	}
	live["dead"] = false
	if err := os.WriteFile(files[1], []byte("8192"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.release("a"); err != nil {
		t.Fatal(err)
	}
	if a, b := sysctl(t, files[0]), sysctl(t, files[1]); a != 1024 || b != 8192 {
		t.Fatalf("limits = %d, %d; want 1024 restored and the hand-set 8192 kept", a, b)
	}
}
