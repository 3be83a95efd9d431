// Package linkcheck is a test helper: it lists the packages that a
// binary links (`go list -deps`), so that a test can keep packages out of
// a binary that must stay small (the node agent's, its speaker's).
package linkcheck

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// GoTool is the go command of the toolchain that runs the test.
func GoTool(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("no go command in $PATH or at %s: %v", p, err)
	}
	return p
}

// Deps lists the import paths that the main package in dir links, built
// with tags (none if empty).
func Deps(t testing.TB, dir string, tags ...string) []string {
	t.Helper()
	args := []string{"list", "-deps"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command(GoTool(t), append(args, ".")...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, msg)
	}
	return strings.Fields(string(out))
}

// RequireNone fails t for every package in deps that is one of forbidden
// or below one of them (a forbidden "a/b" matches "a/b" and "a/b/c", not
// "a/bc").
func RequireNone(t testing.TB, deps []string, forbidden ...string) {
	t.Helper()
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("links %s (%s is kept out)", d, f)
			}
		}
	}
}
