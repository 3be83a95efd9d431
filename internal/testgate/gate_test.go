package main

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testdata/mixed.jsonl is what `go test -json -count=1 ./...` printed in
// testdata/mod (a module of its own, which the repository's ./... leaves
// out): a package that passes with skips, one with a failing subtest, one
// whose test panics, one that does not build, one without tests. Rerun
// that command there to regenerate it.

func readCanned(t *testing.T, name string) (*Gate, string) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out strings.Builder
	g := NewGate(&out)
	if err := g.Read(f); err != nil {
		t.Fatal(err)
	}
	return g, out.String()
}

func TestGateMixed(t *testing.T) {
	g, out := readCanned(t, "testdata/mixed.jsonl")
	const m = "example.com/m/"
	if diff := cmp.Diff([]Skip{
		{m + "okpkg", "TestSkip", "ok_test.go:6: needs a daemon"},
		{m + "okpkg", "TestSub/b", "ok_test.go:9: sub 2"},
	}, g.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{m + "failpkg TestFail/sub", m + "failpkg TestFail", m + "panicpkg TestPanic"}, g.FailedTests); diff != "" {
		t.Errorf("failed tests (-want +got):\n%s", diff)
	}
	failedPkgs := slices.Sorted(slices.Values(g.FailedPkgs))
	if diff := cmp.Diff([]string{m + "buildfail", m + "failpkg", m + "panicpkg"}, failedPkgs); diff != "" {
		t.Errorf("failed packages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{m + "buildfail [" + m + "buildfail.test]"}, g.FailedBuilds); diff != "" {
		t.Errorf("failed builds (-want +got):\n%s", diff)
	}

	// The text is go test's: failed tests with their subtests nested, the
	// panic's trace, build errors, one line per package; nothing from
	// tests that passed or skipped, and no framing.
	for _, want := range []string{
		"--- FAIL: TestFail (0.00s)\n    --- FAIL: TestFail/sub (0.00s)\n        fail_test.go:7: want 1, got 2\n",
		"--- FAIL: TestPanic (0.00s)\npanic: assignment to entry in nil map",
		"panic_test.go:6",
		"b.go:3:23: cannot use \"x\" (untyped string constant) as int value",
		"FAIL\texample.com/m/buildfail [build failed]\n",
		"FAIL\texample.com/m/failpkg\t",
		"FAIL\texample.com/m/panicpkg\t",
		"ok  \texample.com/m/okpkg\t",
		"?   \texample.com/m/notests\t[no test files]\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"quiet", "needs a daemon", "=== RUN", "--- PASS", "--- SKIP", "\nPASS\n"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("output has %q:\n%s", unwanted, out)
		}
	}
	if g.Verdict(false, nil) {
		t.Error("a run with failures passed")
	}
}

// TestGateUnfinished: a binary that dies inside a test (a timeout, a
// panic in another goroutine, os.Exit) leaves the test without a verdict:
// the test counts as failed and what it printed is shown.
func TestGateUnfinished(t *testing.T) {
	in := `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestSlow"}
{"Action":"output","Package":"p","Test":"TestSlow","Output":"=== RUN   TestSlow\n"}
{"Action":"output","Package":"p","Test":"TestSlow","Output":"    slow_test.go:9: waiting\n"}
{"Action":"output","Package":"p","Output":"panic: test timed out after 1s\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t1.005s\n"}
{"Action":"fail","Package":"p","Elapsed":1.005}
`
	var out strings.Builder
	g := NewGate(&out)
	if err := g.Read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"p TestSlow"}, g.FailedTests); diff != "" {
		t.Errorf("failed tests (-want +got):\n%s", diff)
	}
	for _, want := range []string{"panic: test timed out after 1s\n", "--- FAIL: TestSlow (unfinished", "    slow_test.go:9: waiting\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if g.Verdict(false, nil) {
		t.Error("a run whose binary died passed")
	}
}

// TestVerdict: when a run passes, with and without CI=true.
func TestVerdict(t *testing.T) {
	pass := `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p"}
`
	skip := `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:3: needs root\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- SKIP: TestA (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p"}
`
	noTests := `{"Action":"output","Package":"p","Output":"?   \tp\t[no test files]\n"}
{"Action":"skip","Package":"p"}
`
	for _, tc := range []struct {
		name    string
		in      string
		ci      bool
		exitErr error
		want    bool
		says    string
	}{
		{"pass", pass, false, nil, true, "testgate: PASS"},
		{"pass in CI", pass, true, nil, true, "testgate: PASS"},
		{"skip", skip, false, nil, true, "SKIP p TestA: a_test.go:3: needs root"},
		{"skip in CI", skip, true, nil, false, "CI=true and 1 tests skipped"},
		{"package without tests in CI", noTests, true, nil, true, "testgate: PASS"},
		{"go test failed", pass, false, errors.New("exit status 2"), false, "exit status 2"},
		{"nothing ran", "", false, nil, false, "reported nothing"},
		{"text, not JSON", "ok  \tp\t0.1s\n", false, nil, false, "reported nothing"},
	} {
		var out strings.Builder
		g := NewGate(&out)
		if err := g.Read(strings.NewReader(tc.in)); err != nil {
			t.Fatal(err)
		}
		if got := g.Verdict(tc.ci, tc.exitErr); got != tc.want {
			t.Errorf("%s: verdict %v, want %v:\n%s", tc.name, got, tc.want, out.String())
		}
		if !strings.Contains(out.String(), tc.says) {
			t.Errorf("%s: output lacks %q:\n%s", tc.name, tc.says, out.String())
		}
	}
}

// TestRunRealGoTest runs the real toolchain on testdata/mod, its skipping
// package with -race, through run: the failures of the other packages
// reach the verdict, and the race pass runs only the package it names.
func TestRunRealGoTest(t *testing.T) {
	t.Chdir("testdata/mod")
	goBin := "go"
	if root := os.Getenv("GOROOT"); root != "" {
		goBin = root + "/bin/go"
	}
	var out strings.Builder
	g := NewGate(&out)
	err := run(g, goBin, []string{"./..."}, []string{"./okpkg"}, []string{"-count=1"}, &out)
	if err == nil {
		t.Errorf("go test of failing packages ended without error:\n%s", out.String())
	}
	if g.Verdict(false, err) {
		t.Errorf("verdict PASS for failing packages:\n%s", out.String())
	}
	if len(g.FailedBuilds) != 1 || len(g.FailedTests) != 3 || len(g.Skipped) != 2 {
		t.Errorf("builds failed %v, tests failed %v, skipped %v; want 1, 3, 2:\n%s", g.FailedBuilds, g.FailedTests, g.Skipped, out.String())
	}
	for _, want := range []string{"go test -json -race -count=1 (1 packages)", "go test -json -count=1 (4 packages)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
