// Command bgpfabric is the one binary of bgpfabric: the node agent, the
// route reflector, the simulator, the embedded datastore, the CNI plugin and
// the operator commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/bgpfabric/bgpfabric/cni"
)

func main() {
	if filepath.Base(os.Args[0]) == cniBinaryName {
		os.Exit(cni.Main(cniAbout))
	}
	args := os.Args[1:]
	if cmd, ok := binaryCommands[filepath.Base(os.Args[0])]; ok {
		args = append([]string{cmd}, args...)
	}
	os.Exit(run(args, os.Stdin, os.Stdout, os.Stderr))
}

// binaryCommands maps a binary's name to the command it runs without
// naming it (bgpfabric-kube-controllers, built with the kube tag).
var binaryCommands = map[string]string{}

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
