// Package buildidtest builds small Go binaries with chosen build
// identities (internal/buildid) for tests: a main package of its own in a
// module of its own, so that a build takes a second, not the minute of a
// bgpfabric binary.
package buildidtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/buildid"
	"github.com/bgpfabric/bgpfabric/internal/linkcheck"
)

// Build builds a program that prints buildid.Source to path as make
// build builds bgpfabric (-trimpath, -ldflags -X setting buildid.Source to
// SourceMarker and digest, none if digest is empty), without VCS
// information. Its module has this module's path and a package
// internal/buildid of its own, with nothing else.
func Build(t testing.TB, path, digest string) {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module github.com/bgpfabric/bgpfabric\n\ngo 1.22\n")
	write(t, filepath.Join(dir, "main.go"), `package main

import "github.com/bgpfabric/bgpfabric/internal/buildid"

func main() { println(buildid.Source) }
`)
	if err := os.MkdirAll(filepath.Join(dir, "internal", "buildid"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "internal", "buildid", "source.go"), "package buildid\n\nvar Source string\n")
	args := []string{"build", "-trimpath", "-buildvcs=false", "-o", path}
	if digest != "" {
		args = append(args, "-ldflags", "-X "+buildid.SourceSymbol+"="+buildid.SourceMarker+digest)
	}
	run(t, dir, linkcheck.GoTool(t), append(args, ".")...)
}

// BuildVCS builds a program that does nothing to path from a git
// repository of one commit, with VCS information (vcs.revision).
func BuildVCS(t testing.TB, path string) {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module example.com/stale\n\ngo 1.22\n")
	write(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() {}\n")
	git := []string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}
	run(t, dir, "git", append(git, "init", "-q")...)
	run(t, dir, "git", append(git, "add", ".")...)
	run(t, dir, "git", append(git, "commit", "-q", "-m", "one")...)
	run(t, dir, linkcheck.GoTool(t), "build", "-buildvcs=true", "-o", path, ".")
}

func write(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func run(t testing.TB, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
}
