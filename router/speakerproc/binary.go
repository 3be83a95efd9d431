package speakerproc

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/buildid"
)

// BinaryName is the speaker's own binary (cmd/bgpfabric-speaker),
// installed beside bgpfabric. It links GoBGP and this package but not the
// datastore, the embedded etcd, the simulator or the CLI, whose package
// initialisation would cost the speaker process memory it never uses
// (docs/architecture.md, "The speaker's own binary").
const BinaryName = "bgpfabric-speaker"

// EnvQuery asks a speaker binary for its protocol identity: with it set,
// the binary prints ProtocolID and exits.
const EnvQuery = "BGPFABRIC_SPEAKER_QUERY"

// Log keys of Command.
const (
	logKeyPath   = "path"
	logKeyReason = "reason"
)

// queryTimeout bounds the protocol query of a speaker binary.
const queryTimeout = 10 * time.Second

// Command returns a Config.Command for the node: the speaker binary
// beside this executable (BinaryName) when it is there and speaks this
// build's protocol (ProtocolID) and was built from the same sources
// (internal/buildid), else fallback (the node runs its own
// binary as the speaker: SelfCommand("node", "speaker")). It logs which
// it chose. The binary found is held open and every child is run from
// that open file, so that a speaker binary replaced on disk while the
// node runs (an upgrade in progress) does not give the node a speaker of
// another version; the node's next start finds the new one.
func Command(fallback func() *exec.Cmd, lg *slog.Logger) func() *exec.Cmd {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	exe, err := os.Executable()
	if err != nil {
		lg.Warn("running the BGP speaker from this binary", logKeyReason, fmt.Sprintf("finding this executable: %v", err))
		return fallback
	}
	return commandIn(filepath.Dir(exe), fallback, lg)
}

// Find is Command without a fallback, for a binary that cannot be its own
// speaker (bgpfabric-node, which does not link GoBGP): the speaker binary
// beside this executable, or an error that names it and says why it
// cannot be used.
func Find(lg *slog.Logger) (func() *exec.Cmd, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding %s: finding this executable: %w", BinaryName, err)
	}
	return findIn(filepath.Dir(exe), lg)
}

// commandIn is Command for the speaker binary in dir.
func commandIn(dir string, fallback func() *exec.Cmd, lg *slog.Logger) func() *exec.Cmd {
	run, err := findIn(dir, lg)
	if err == nil {
		return run
	}
	var nf notFoundError
	if errors.As(err, &nf) {
		lg.Info("running the BGP speaker from this binary", logKeyReason, "no "+BinaryName+" beside it", logKeyPath, nf.path)
	} else {
		lg.Warn("running the BGP speaker from this binary", logKeyReason, err.Error())
	}
	return fallback
}

// notFoundError: there is no speaker binary at path.
type notFoundError struct{ path string }

func (e notFoundError) Error() string { return e.path + ": no such file" }

// findIn is Find for the speaker binary in dir.
func findIn(dir string, lg *slog.Logger) (func() *exec.Cmd, error) {
	path := filepath.Join(dir, BinaryName)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, notFoundError{path}
		}
		return nil, err
	}
	// A speaker binary of other sources (left from an earlier build)
	// would run old code, even when it speaks this protocol.
	if err := buildid.CompareSelf(path); err != nil {
		if !buildid.MixedAllowed() {
			f.Close()
			return nil, err
		}
		lg.Warn("running a BGP speaker binary of other sources", logKeyReason, err.Error())
	}
	// The parent's descriptor, named through its own /proc entry: the
	// child resolves the name before it runs anything, and its own
	// descriptor 3 is the channel.
	pinned := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
	run := func() *exec.Cmd {
		cmd := exec.Command(pinned)
		cmd.Args[0] = path
		return cmd
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	q := exec.CommandContext(ctx, pinned)
	q.Args[0] = path
	q.Env = append(os.Environ(), EnvQuery+"=1")
	out, err := q.Output()
	got := strings.TrimSpace(string(out))
	switch {
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("%s: asking it for its protocol: %w", path, err)
	case got != ProtocolID():
		f.Close()
		return nil, fmt.Errorf("%s speaks protocol %q, this binary %q (built from other sources)", path, got, ProtocolID())
	}
	lg.Info("running the BGP speaker from its own binary", logKeyPath, path)
	return func() *exec.Cmd {
		_ = f // held open for the node's life: every child runs from it
		return run()
	}, nil
}

// ProtocolID identifies the protocol between the node and its speaker: a
// digest of the operations and of the structure of the messages (field
// names and types, recursively), which gob sends by name. A node and a
// speaker binary agree on it when they were built from the same protocol
// sources.
var ProtocolID = sync.OnceValue(func() string {
	var b strings.Builder
	for o, name := range opNames {
		fmt.Fprintf(&b, "%d=%s;", o, name)
	}
	seen := map[reflect.Type]bool{}
	describe(&b, reflect.TypeFor[request](), seen)
	describe(&b, reflect.TypeFor[message](), seen)
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
})

var binaryMarshaler = reflect.TypeFor[encoding.BinaryMarshaler]()

// describe writes t's structure as gob sees it.
func describe(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	b.WriteString(t.String())
	if seen[t] || t.Implements(binaryMarshaler) {
		return
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		b.WriteByte('<')
		describe(b, t.Elem(), seen)
		b.WriteByte('>')
	case reflect.Map:
		b.WriteByte('<')
		describe(b, t.Key(), seen)
		b.WriteByte(',')
		describe(b, t.Elem(), seen)
		b.WriteByte('>')
	case reflect.Struct:
		b.WriteByte('{')
		for i := range t.NumField() {
			fd := t.Field(i)
			if !fd.IsExported() {
				continue
			}
			b.WriteString(fd.Name)
			b.WriteByte(' ')
			describe(b, fd.Type, seen)
			b.WriteByte(';')
		}
		b.WriteByte('}')
	default:
		b.WriteString(t.Kind().String())
	}
}

// Main is the main of the speaker's own binary (cmd/bgpfabric-speaker):
// it answers a protocol query, or runs the child that a node started,
// with newSpeaker's speaker; run any other way it fails.
func Main(newSpeaker NewSpeaker) {
	if os.Getenv(EnvChild) == "" && os.Getenv(EnvQuery) == "" {
		fmt.Fprintln(os.Stderr, BinaryName+": the BGP speaker of bgpfabric node, started by it only (no channel)")
		os.Exit(2)
	}
	MaybeChild(newSpeaker)
}
