package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent, and the
// build events cmd/go adds).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	FailedBuild string
	ImportPath  string
}

// testRun is the output of one test, held until the test ends: only a
// failed test's output is printed, as `go test` does without -v.
type testRun struct {
	name   string
	header string   // the test's "--- FAIL: ..." line
	body   []string // everything else it printed, framing ("=== RUN") left out
	// children are the rendered output of its failed subtests, printed
	// after its own, indented one level deeper, as `go test` prints them.
	children []string
	done     bool
	failed   bool
}

// pkgRun is one test binary's state.
type pkgRun struct {
	tests map[string]*testRun
	order []string // test names in the order they started
}

// Skip is a test that skipped, with the reason it gave.
type Skip struct {
	Package, Test, Reason string
}

// Gate reads `go test -json` streams, prints them as `go test` would print
// its text output, and keeps what the verdict needs.
type Gate struct {
	out  io.Writer
	pkgs map[string]*pkgRun

	Skipped      []Skip
	FailedTests  []string // "package Test"
	FailedPkgs   []string // packages whose binary failed, built or not
	FailedBuilds []string // import paths that did not build
	// Events counts the JSON events read: a run that produced none at all
	// ran nothing.
	Events int
}

// NewGate returns a Gate that prints to out.
func NewGate(out io.Writer) *Gate {
	return &Gate{out: out, pkgs: map[string]*pkgRun{}}
}

// Read consumes one `go test -json` stream. Lines that are not JSON events
// (a toolchain that prints text) are printed as they are.
func (g *Gate) Read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(g.out, "%s\n", line)
			continue
		}
		g.Events++
		g.handle(e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading go test -json output: %w", err)
	}
	return nil
}

func (g *Gate) pkg(name string) *pkgRun {
	p := g.pkgs[name]
	if p == nil {
		p = &pkgRun{tests: map[string]*testRun{}}
		g.pkgs[name] = p
	}
	return p
}

func (p *pkgRun) test(name string) *testRun {
	t := p.tests[name]
	if t == nil {
		t = &testRun{name: name}
		p.tests[name] = t
		p.order = append(p.order, name)
	}
	return t
}

func (g *Gate) handle(e event) {
	switch e.Action {
	case "build-output":
		fmt.Fprint(g.out, e.Output)
		return
	case "build-fail":
		g.FailedBuilds = append(g.FailedBuilds, e.ImportPath)
		return
	}
	p := g.pkg(e.Package)
	if e.Test == "" {
		g.handlePackage(p, e)
		return
	}
	t := p.test(e.Test)
	switch e.Action {
	case "output":
		switch {
		case isFraming(e.Output):
		case t.header == "" && isResult(e.Output):
			t.header = e.Output
		case t.done && t.failed:
			// Output after the verdict: a panic's trace.
			fmt.Fprint(g.out, indent(e.Output, depth(t.name)))
		case !t.done:
			t.body = append(t.body, e.Output)
		}
	case "fail":
		t.done, t.failed = true, true
		g.FailedTests = append(g.FailedTests, e.Package+" "+e.Test)
		g.report(p, t)
	case "pass":
		t.done = true
	case "skip":
		t.done = true
		g.Skipped = append(g.Skipped, Skip{Package: e.Package, Test: e.Test, Reason: reason(t.body)})
	}
}

// handlePackage handles an event of the test binary itself.
func (g *Gate) handlePackage(p *pkgRun, e event) {
	switch e.Action {
	case "output":
		if e.Output != "PASS\n" { // go test leaves it out for a passing package
			fmt.Fprint(g.out, e.Output)
		}
	case "fail":
		g.FailedPkgs = append(g.FailedPkgs, e.Package)
		if e.FailedBuild != "" && !slices.Contains(g.FailedBuilds, e.FailedBuild) {
			g.FailedBuilds = append(g.FailedBuilds, e.FailedBuild)
		}
		// A binary that died (a panic outside a test, a timeout, os.Exit)
		// leaves tests without a verdict: what they printed is the story.
		for _, name := range p.order {
			if t := p.tests[name]; !t.done {
				t.done, t.failed = true, true
				fmt.Fprintf(g.out, "--- FAIL: %s (unfinished: the test binary failed)\n", name)
				for _, b := range t.body {
					fmt.Fprint(g.out, indent(b, depth(name)))
				}
				g.FailedTests = append(g.FailedTests, e.Package+" "+name)
			}
		}
		delete(g.pkgs, e.Package)
	case "pass", "skip":
		delete(g.pkgs, e.Package)
	}
}

// report renders a failed test: a subtest into its parent, which prints it
// after its own output when it fails too; a top-level test at once.
func (g *Gate) report(p *pkgRun, t *testRun) {
	var b strings.Builder
	d := depth(t.name)
	header := t.header
	if header == "" {
		header = "--- FAIL: " + t.name + "\n"
	}
	b.WriteString(indent(header, d))
	for _, line := range t.body {
		b.WriteString(indent(line, d))
	}
	for _, c := range t.children {
		b.WriteString(c)
	}
	if i := strings.LastIndexByte(t.name, '/'); i >= 0 {
		if parent := p.tests[t.name[:i]]; parent != nil && !parent.done {
			parent.children = append(parent.children, b.String())
			return
		}
	}
	fmt.Fprint(g.out, b.String())
}

// Verdict prints the closing summary (every skipped test, every failure)
// and reports whether the run passed. ci makes any skip a failure; exitErr
// is how the go commands ended.
func (g *Gate) Verdict(ci bool, exitErr error) bool {
	ok := true
	if len(g.Skipped) > 0 {
		fmt.Fprintf(g.out, "\ntestgate: %d skipped:\n", len(g.Skipped))
		for _, s := range g.Skipped {
			fmt.Fprintf(g.out, "    SKIP %s %s: %s\n", s.Package, s.Test, s.Reason)
		}
		if ci {
			fmt.Fprintf(g.out, "testgate: FAIL: CI=true and %d tests skipped: in CI a skip is a failure\n", len(g.Skipped))
			ok = false
		}
	}
	if len(g.FailedBuilds) > 0 {
		fmt.Fprintf(g.out, "testgate: FAIL: did not build: %s\n", strings.Join(g.FailedBuilds, ", "))
		ok = false
	}
	if len(g.FailedTests) > 0 {
		fmt.Fprintf(g.out, "testgate: FAIL: %d tests failed:\n", len(g.FailedTests))
		for _, t := range g.FailedTests {
			fmt.Fprintf(g.out, "    FAIL %s\n", t)
		}
		ok = false
	}
	if len(g.FailedPkgs) > 0 {
		fmt.Fprintf(g.out, "testgate: FAIL: %d packages failed: %s\n", len(g.FailedPkgs), strings.Join(g.FailedPkgs, ", "))
		ok = false
	}
	if exitErr != nil {
		fmt.Fprintf(g.out, "testgate: FAIL: %v\n", exitErr)
		ok = false
	}
	if g.Events == 0 {
		fmt.Fprintln(g.out, "testgate: FAIL: go test reported nothing")
		ok = false
	}
	if ok {
		fmt.Fprintln(g.out, "testgate: PASS")
	}
	return ok
}

// isFraming reports whether s is a line test2json adds around tests.
func isFraming(s string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// isResult reports whether s is a test's closing "--- PASS/FAIL/SKIP" line.
func isResult(s string) bool {
	for _, p := range []string{"--- PASS: ", "--- FAIL: ", "--- SKIP: "} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// depth is how deep a (sub)test is nested.
func depth(name string) int { return strings.Count(name, "/") }

// indent indents each line of s by four spaces per level.
func indent(s string, level int) string {
	if level == 0 || s == "" {
		return s
	}
	pad := strings.Repeat("    ", level)
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(pad + l)
		}
	}
	return b.String()
}

// reason is a skipped test's message: what it printed, on one line.
func reason(body []string) string {
	var parts []string
	for _, l := range body {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " | ")
}
