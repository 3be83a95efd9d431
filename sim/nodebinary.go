package sim

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bgpfabric/bgpfabric/internal/buildid"
)

// NodeBinaryName is the node agent's own binary: bgpfabric built with the
// nodeonly tag (make build installs it beside bgpfabric). It runs
// `bgpfabric node` and nothing else, and links neither the embedded etcd
// server nor the simulator nor the other commands, whose code and
// start-up work would cost every node agent memory (docs/scale.md,
// "Memory at rest").
const NodeBinaryName = "bgpfabric-node"

// resolveNodeBinary fills o.NodeBinary: the one the options name, which
// must be an executable file; else NodeBinaryName beside o.Binary when it
// is there (as a node finds bgpfabric-speaker beside itself); else
// o.Binary, whose `node` command is the same agent.
func (o Options) resolveNodeBinary() (string, error) {
	if o.NodeBinary != "" {
		if err := checkExecutable(o.NodeBinary); err != nil {
			return "", fmt.Errorf("node binary: %w", err)
		}
		return o.NodeBinary, nil
	}
	bin := o.Binary
	if !strings.ContainsRune(bin, filepath.Separator) {
		p, err := exec.LookPath(bin)
		if err != nil {
			return o.Binary, nil
		}
		bin = p
	}
	beside := filepath.Join(filepath.Dir(bin), NodeBinaryName)
	if checkExecutable(beside) != nil {
		return o.Binary, nil
	}
	return beside, nil
}

// logKeyErr is the log key of an error (fabric.go spells it the same).
const logKeyErr = "err"

// sameBuild refuses a node binary that was not built from the same
// sources as o.Binary (internal/buildid: a stale bgpfabric-node would run
// old code in every node agent), unless buildid.EnvMixed allows it, for a
// deliberate comparison; then it logs the difference.
func (o Options) sameBuild(nodeBin string) error {
	bin := o.Binary
	if nodeBin == bin {
		return nil
	}
	if !strings.ContainsRune(bin, filepath.Separator) {
		p, err := exec.LookPath(bin)
		if err != nil {
			return nil // not found: running it says so
		}
		bin = p
	}
	err := buildid.CompareFiles(bin, nodeBin)
	if err == nil {
		return nil
	}
	if buildid.MixedAllowed() {
		o.Logger.Warn("running node agents from a binary of other sources", logKeyErr, err)
		return nil
	}
	return fmt.Errorf("node binary: %w", err)
}

// checkExecutable says whether path is a file that can be run, naming it
// when not.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s: not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s: not executable", path)
	}
	return nil
}
