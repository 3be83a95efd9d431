// Package buildid tells whether two bgpfabric binaries were built from the
// same sources, so that a stale binary installed beside fresh ones (a
// bgpfabric-node or bgpfabric-speaker left from an earlier build) does not
// silently run old code in a simulation or a benchmark.
//
// A binary's Identity is read from the build information the Go linker
// records in it (runtime/debug for the running binary, debug/buildinfo
// for a file, which is not run): the main module's VCS revision and
// whether the tree had changes (vcs.revision, vcs.modified), and the
// source digest that `make build` sets with -ldflags -X (Source), which
// tells apart builds of one revision with different uncommitted changes
// and is there also when the build has no VCS information (-buildvcs=false
// in GOFLAGS). Go does not record -ldflags in -trimpath builds, so in a
// file Source is found by its marker (SourceMarker), which the -X value
// carries before the digest.
// Binaries built with plain `go build` from one modified tree at
// different times carry the same revision and modified flag and are not
// told apart: build them together with make build.
//
// EnvMixed lets binaries of different identities run together, for
// deliberate before/after comparisons.
package buildid

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Source is SourceMarker followed by a digest of the sources the binary
// was built from, set by make build (-ldflags -X, SourceSymbol); empty
// otherwise.
var Source string

// sourceKept is read by nobody: its init keeps Source in every binary that
// links this package, also in one that never calls Self (the speaker's
// child code), whose file another binary reads.
var sourceKept string

func init() { sourceKept = Source }

// SourceSymbol is Source's name for -ldflags -X.
const SourceSymbol = "github.com/bgpfabric/bgpfabric/internal/buildid.Source"

// SourceMarker starts Source's value; the digest after it is DigestLen
// lower-case hex digits. This package's code holds the marker only in two
// parts, so that a binary holds it whole only in Source's value.
var SourceMarker = strings.Join([]string{"bgpfabric-", "source-"}, "")

// DigestLen is the length of Source's digest.
const DigestLen = 16

// EnvMixed, set to 1 or true, lets binaries built from different sources
// run together: the check logs instead of refusing.
const EnvMixed = "BGPFABRIC_MIXED_BUILDS"

// Identity is what a binary's build records of its sources.
type Identity struct {
	Revision string // vcs.revision; empty when built without VCS information
	Modified bool   // vcs.modified: the tree had uncommitted changes
	Source   string // the digest in Source's -X value
}

func (i Identity) String() string {
	if i == (Identity{}) {
		return "no build identity (no VCS information, no source digest)"
	}
	var parts []string
	if i.Revision != "" {
		r := "revision " + i.Revision
		if i.Modified {
			r += " with uncommitted changes"
		}
		parts = append(parts, r)
	} else {
		parts = append(parts, "no VCS revision")
	}
	if i.Source != "" {
		parts = append(parts, "source digest "+i.Source)
	} else {
		parts = append(parts, "no source digest")
	}
	return strings.Join(parts, ", ")
}

// Self is the running binary's identity.
func Self() Identity {
	var id Identity
	if bi, ok := debug.ReadBuildInfo(); ok {
		id = fromInfo(bi)
	}
	id.Source = digestOf(Source)
	return id
}

// Of reads the identity of the Go binary at path without running it; an
// error when path is not a Go binary with build information.
func Of(path string) (Identity, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return Identity{}, fmt.Errorf("reading the build information of %s: %w", path, err)
	}
	id := fromInfo(bi)
	if id.Source == "" {
		if id.Source, err = scanSource(path); err != nil {
			return Identity{}, err
		}
	}
	return id, nil
}

// digestOf is the digest of a Source value ("" when it has none).
func digestOf(v string) string {
	d, ok := strings.CutPrefix(v, SourceMarker)
	if !ok || !isDigest(d) {
		return ""
	}
	return d
}

func isDigest(d string) bool {
	if len(d) != DigestLen {
		return false
	}
	for _, c := range []byte(d) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// scanSource finds Source's digest in the file at path: the first
// SourceMarker followed by a digest. It reads the file in chunks, so that
// a node agent checking its 25 MB speaker binary does not hold it in
// memory.
func scanSource(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	marker := []byte(SourceMarker)
	keep := len(marker) + DigestLen // carried over between chunks
	buf := make([]byte, 256<<10)
	n := 0 // bytes in buf
	for {
		m, err := f.Read(buf[n:])
		n += m
		for rest := buf[:n]; ; {
			i := bytes.Index(rest, marker)
			if i < 0 || i+keep > len(rest) {
				break
			}
			if d := string(rest[i+len(marker) : i+keep]); isDigest(d) {
				return d, nil
			}
			rest = rest[i+1:]
		}
		if err == io.EOF {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", path, err)
		}
		if n > keep {
			n = copy(buf, buf[n-keep:n])
		}
	}
}

func fromInfo(bi *debug.BuildInfo) Identity {
	var id Identity
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			id.Revision = s.Value
		case "vcs.modified":
			id.Modified, _ = strconv.ParseBool(s.Value)
		case "-ldflags":
			id.Source = sourceIn(s.Value)
		}
	}
	return id
}

// sourceIn finds SourceSymbol's value among linker flags ("-X name=value"
// or "-X=name=value"; the last one counts, as for the linker).
func sourceIn(ldflags string) string {
	var v string
	f := strings.Fields(ldflags)
	for i := 0; i < len(f); i++ {
		arg := strings.TrimPrefix(f[i], "-")
		var def string
		switch {
		case arg == "-X" || arg == "X":
			if i+1 < len(f) {
				i++
				def = f[i]
			}
		case strings.HasPrefix(arg, "X="), strings.HasPrefix(arg, "-X="):
			_, def, _ = strings.Cut(arg, "=")
		}
		if name, val, ok := strings.Cut(strings.Trim(def, `'"`), "="); ok && name == SourceSymbol {
			v = digestOf(val)
		}
	}
	return v
}

// Binary is a binary file and its identity.
type Binary struct {
	Path string
	ID   Identity
}

// MismatchError says that two binaries that run together were not built
// from the same sources.
type MismatchError struct {
	Want Binary // the one the other must match
	Got  Binary
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s (%s) was not built from the same sources as %s (%s): it would run other code; "+
		"build them together (make build), or set %s=1 to run them anyway",
		e.Got.Path, e.Got.ID, e.Want.Path, e.Want.ID, EnvMixed)
}

// Compare returns a *MismatchError when want and got differ.
func Compare(want, got Binary) error {
	if want.ID != got.ID {
		return &MismatchError{Want: want, Got: got}
	}
	return nil
}

// CompareFiles compares the binaries at the two paths. A file that is
// not a Go binary with build information (a wrapper script) is not
// compared: running it tells what it is.
func CompareFiles(want, got string) error {
	w, err := Of(want)
	if err != nil {
		return nil
	}
	g, err := Of(got)
	if err != nil {
		return nil
	}
	return Compare(Binary{want, w}, Binary{got, g})
}

// CompareSelf compares the binary at path with the running one (named
// by os.Executable), as CompareFiles does.
func CompareSelf(path string) error {
	g, err := Of(path)
	if err != nil {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		self = "this binary"
	}
	return Compare(Binary{self, Self()}, Binary{path, g})
}

// MixedAllowed says whether EnvMixed lets binaries of different
// identities run together.
func MixedAllowed() bool {
	ok, _ := strconv.ParseBool(os.Getenv(EnvMixed))
	return ok
}
