package sim

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
