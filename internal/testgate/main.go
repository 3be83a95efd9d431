// Command testgate runs `go test -json` and turns it into one verdict:
// `make test` runs every package's tests through it.
//
// It prints what `go test` prints without -v (the output of failed tests,
// a line per package, build errors), then lists every skipped test, and
// exits non-zero when a test failed, a test binary failed (a panic, a
// timeout, a race the race detector found) or a package did not build, and
// also, when the environment variable CI is "true", when any test skipped:
// in CI a skip hides a test that did not run.
//
// The packages given to -race run with the race detector, the others
// without, each package once:
//
//	go run ./internal/testgate -pkgs ./... -race './api/... ./peering' -- -count=1 -timeout 35m
//
// Arguments after the flags are go test flags, passed to both runs.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

func main() {
	pkgs := flag.String("pkgs", "./...", "space-separated packages to test")
	race := flag.String("race", "", "space-separated packages (a subset of -pkgs) to test with -race")
	goBin := flag.String("go", "go", "the go command")
	flag.Parse()

	g := NewGate(os.Stdout)
	err := run(g, *goBin, strings.Fields(*pkgs), strings.Fields(*race), flag.Args(), os.Stderr)
	if !g.Verdict(os.Getenv("CI") == "true", err) {
		os.Exit(1)
	}
}

// run tests pkgs, those of race with -race and the others without, with
// the go test flags testFlags, and feeds both runs to g.
func run(g *Gate, goBin string, pkgs, race, testFlags []string, stderr io.Writer) error {
	all, err := list(goBin, pkgs)
	if err != nil {
		return err
	}
	var raced, plain []string
	if len(race) > 0 {
		if raced, err = list(goBin, race); err != nil {
			return err
		}
	}
	raced = slices.DeleteFunc(raced, func(p string) bool { return !slices.Contains(all, p) })
	for _, p := range all {
		if !slices.Contains(raced, p) {
			plain = append(plain, p)
		}
	}
	var errs []error
	for _, pass := range []struct {
		flags []string
		pkgs  []string
	}{
		{nil, plain},
		{[]string{"-race"}, raced},
	} {
		if len(pass.pkgs) == 0 {
			continue
		}
		args := append([]string{"test", "-json"}, pass.flags...)
		args = append(append(args, testFlags...), pass.pkgs...)
		start := time.Now()
		fmt.Fprintf(g.out, "testgate: go test -json %s (%d packages)\n", strings.Join(append(slices.Clone(pass.flags), testFlags...), " "), len(pass.pkgs))
		err := goTest(g, goBin, args, stderr)
		fmt.Fprintf(g.out, "testgate: that run took %s\n", time.Since(start).Round(time.Second))
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// goTest runs one go test command with its standard output read by g.
func goTest(g *Gate, goBin string, args []string, stderr io.Writer) error {
	cmd := exec.Command(goBin, args...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s test: %w", goBin, err)
	}
	readErr := g.Read(out)
	if err := cmd.Wait(); err != nil {
		return errors.Join(fmt.Errorf("%s %s: %w", goBin, strings.Join(args[:2], " "), err), readErr)
	}
	return readErr
}

// list resolves package patterns to import paths.
func list(goBin string, patterns []string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(goBin, append([]string{"list"}, patterns...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %w\n%s", strings.Join(patterns, " "), err, stderr.Bytes())
	}
	return strings.Fields(string(out)), nil
}
