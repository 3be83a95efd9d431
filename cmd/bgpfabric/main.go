// Command bgpfabric is the one binary of bgpfabric: the node agent, the
// route reflector, the simulator, the embedded datastore, the CNI plugin and
// the operator commands.
//
// Built with the nodeonly tag it is bgpfabric-node, the node agent's own
// binary: the node command only (files of the other commands carry
// `//go:build !nodeonly`), without the etcd server, the simulator or the
// reflector, so that every node agent's process is that much smaller
// (docs/scale.md, "Memory at rest"). A new command's file needs that line
// unless the node agent runs it (TestNodeBinaryLinksTheNodeOnly).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	if m, ok := binaryMains[filepath.Base(os.Args[0])]; ok {
		os.Exit(m())
	}
	os.Exit(run(binaryArgs(filepath.Base(os.Args[0]), os.Args[1:]), os.Stdin, os.Stdout, os.Stderr))
}

// binaryMains maps a binary's name to a main of its own (bgpfabric-cni).
var binaryMains = map[string]func() int{}

// binaryCommands maps a binary's name to the command it runs without
// naming it (bgpfabric-kube-controllers, built with the kube tag;
// bgpfabric-node, built with the nodeonly tag).
var binaryCommands = map[string]string{}

// binaryArgs is the command line that the binary named name runs for
// args: its command's name first, unless args name it already (so that
// "bgpfabric-node node ..." and "bgpfabric-node ..." are the same, and a
// command line written for bgpfabric runs on it as well).
func binaryArgs(name string, args []string) []string {
	cmd, ok := binaryCommands[name]
	if !ok || (len(args) > 0 && args[0] == cmd) {
		return args
	}
	return append([]string{cmd}, args...)
}

// run executes the command line args and returns the process exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	return 0
}
