//go:build !nodeonly

package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// buildVersions reports bgpfabric's version and the versions of the GoBGP
// and etcd modules compiled into the binary.
func init() { addCommand(newVersionCmd) }

func buildVersions() (bgpfabric, gobgp, etcd string) {
	bgpfabric, gobgp, etcd = version, "unknown", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if bgpfabric == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		bgpfabric = bi.Main.Version
	}
	for _, d := range bi.Deps {
		switch d.Path {
		case "github.com/osrg/gobgp/v3":
			gobgp = d.Version
		case "go.etcd.io/etcd/server/v3":
			etcd = d.Version
		}
	}
	return
}

func newVersionCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of bgpfabric and of the GoBGP and etcd it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, gb, e := buildVersions()
			fmt.Fprintf(g.stdout, "bgpfabric %s\ngobgp     %s\netcd      %s\ngo        %s %s/%s\n",
				b, gb, e, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
