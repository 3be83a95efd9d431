//go:build !nodeonly

package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/cni"
)

func init() {
	addCommand(newCNICmd)
	binaryMains[cniBinaryName] = func() int { return cni.Main(cniAbout) }
}

// cniBinaryName is the name runtimes find the plugin under: the bgpfabric
// binary installed (or linked) into the CNI bin directory as this name
// runs the plugin directly.
const cniBinaryName = "bgpfabric-cni"

// cniAbout is printed when the plugin runs without CNI_COMMAND.
const cniAbout = "bgpfabric CNI plugin"

func newCNICmd(*globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "cni",
		Short: "Run as the CNI plugin (as runtimes call bgpfabric-cni: CNI_COMMAND in the environment, config on stdin)",
		Long: `Run as the CNI plugin. Runtimes call it with CNI_COMMAND (ADD, DEL, CHECK,
STATUS, GC, VERSION) and the other CNI_ variables in the environment and the
network configuration on stdin; see docs/cni.md. Install the binary into the
CNI bin directory as bgpfabric-cni (a copy or a link) to have runtimes find it.`,
		Args:               cobra.NoArgs,
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			os.Exit(cni.Main(cniAbout))
			return nil
		},
	}
}
