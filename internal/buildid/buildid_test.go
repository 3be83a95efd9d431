package buildid_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/buildid"
	"github.com/bgpfabric/bgpfabric/internal/buildid/buildidtest"
)

const (
	digestA = "00000000000000aa"
	digestB = "00000000000000bb"
)

// TestCompareFiles: binaries of one source digest pass; of another
// digest, or one with VCS information beside one without, are refused
// with an error that names both files and both identities.
func TestCompareFiles(t *testing.T) {
	dir := t.TempDir()
	a, a2, b, vcs := filepath.Join(dir, "a"), filepath.Join(dir, "a2"), filepath.Join(dir, "b"), filepath.Join(dir, "vcs")
	buildidtest.Build(t, a, digestA)
	buildidtest.Build(t, a2, digestA)
	buildidtest.Build(t, b, digestB)
	buildidtest.BuildVCS(t, vcs)

	if id, err := buildid.Of(a); err != nil || id != (buildid.Identity{Source: digestA}) {
		t.Errorf("identity of %s: %+v, %v; want source digest-a", a, id, err)
	}
	if err := buildid.CompareFiles(a, a2); err != nil {
		t.Errorf("two builds of one digest: %v", err)
	}
	err := buildid.CompareFiles(a, b)
	var mm *buildid.MismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("builds of two digests: %v, want a MismatchError", err)
	}
	for _, s := range []string{a, b, "source digest " + digestA, "source digest " + digestB, buildid.EnvMixed} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}

	id, err := buildid.Of(vcs)
	if err != nil || len(id.Revision) != 40 || id.Modified {
		t.Fatalf("identity of the VCS build: %+v, %v; want a clean revision", id, err)
	}
	if err := buildid.CompareFiles(vcs, a); err == nil || !strings.Contains(err.Error(), "revision "+id.Revision) {
		t.Errorf("a VCS build beside one without: %v, want a refusal naming the revision", err)
	}
}

// TestCompareFilesSkipsNonGo: a file that is not a Go binary (a wrapper
// script) is not compared.
func TestCompareFilesSkipsNonGo(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	buildidtest.Build(t, a, digestA)
	if _, err := buildid.Of("/dev/null"); err == nil {
		t.Error("Of(/dev/null): no error")
	}
	if err := buildid.CompareFiles(a, "/dev/null"); err != nil {
		t.Errorf("against a file that is not a Go binary: %v", err)
	}
}

func TestMixedAllowed(t *testing.T) {
	t.Setenv(buildid.EnvMixed, "")
	if buildid.MixedAllowed() {
		t.Error("allowed without the variable")
	}
	t.Setenv(buildid.EnvMixed, "1")
	if !buildid.MixedAllowed() {
		t.Errorf("not allowed with %s=1", buildid.EnvMixed)
	}
}
