//go:build !nodeonly

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/spf13/cobra"
)

func init() { addCommand(newInstallCNICmd) }

// newInstallCNICmd is `bgpfabric install-cni`: what the init container of
// deploy/bgpfabric-node.yaml runs to put the CNI plugin and its
// configuration on the host, without a shell in the image.
func newInstallCNICmd(*globalOptions) *cobra.Command {
	var binDir, confDir, conflist, tlsDir string
	cmd := &cobra.Command{
		Use:   "install-cni [--bin-dir DIR] [--conf-dir DIR] --conflist FILE",
		Short: "Install this binary as the CNI plugin bgpfabric-cni and a network configuration list",
		Long: `Install-cni copies this binary into --bin-dir as bgpfabric-cni and the network
configuration list --conflist into --conf-dir under its own file name, each
through a temporary file in the same directory renamed into place, so that a
runtime never sees half a file. The configuration list is checked first (it
must parse as a CNI configuration list whose first plugin is bgpfabric-cni);
a bad one installs nothing. With --tls-dir, the etcd client TLS files
tls.crt, tls.key and ca.crt of that directory (a mounted secret) are copied
into --conf-dir/bgpfabric-tls/ (0600; the directory 0700), where the
configuration list can name them. See docs/kubernetes.md "The node DaemonSet".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf, err := os.ReadFile(conflist)
			if err != nil {
				return fmt.Errorf("--conflist: %w", err)
			}
			cl, err := libcni.ConfListFromBytes(conf)
			if err != nil {
				return fmt.Errorf("--conflist %s: %w", conflist, err)
			}
			if len(cl.Plugins) == 0 || cl.Plugins[0].Network.Type != cniBinaryName {
				return fmt.Errorf("--conflist %s: the first plugin's type must be %q", conflist, cniBinaryName)
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding this binary: %w", err)
			}
			src, err := os.Open(exe)
			if err != nil {
				return fmt.Errorf("reading this binary: %w", err)
			}
			defer src.Close()
			if err := installFile(src, filepath.Join(binDir, cniBinaryName), 0o755); err != nil {
				return err
			}
			dst := filepath.Join(confDir, filepath.Base(conflist))
			if err := installFile(bytes.NewReader(conf), dst, 0o644); err != nil {
				return err
			}
			if tlsDir != "" {
				if err := installTLS(tlsDir, filepath.Join(confDir, cniTLSDir)); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed %s and %s\n", filepath.Join(binDir, cniBinaryName), dst)
			return nil
		},
	}
	cmd.Flags().StringVar(&binDir, "bin-dir", "/host/opt/cni/bin", "the host's CNI bin directory, as mounted")
	cmd.Flags().StringVar(&confDir, "conf-dir", "/host/etc/cni/net.d", "the host's CNI configuration directory, as mounted")
	cmd.Flags().StringVar(&conflist, "conflist", "/etc/bgpfabric/cni/10-bgpfabric.conflist", "the network configuration list to install")
	cmd.Flags().StringVar(&tlsDir, "tls-dir", "", "a directory with the etcd client's tls.crt, tls.key and ca.crt to install beside the configuration")
	return cmd
}

// cniTLSDir is where install-cni puts the etcd client TLS files, under
// the CNI configuration directory.
const cniTLSDir = "bgpfabric-tls"

// installTLS copies the three TLS files of src into dst.
func installTLS(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("--tls-dir: %w", err)
	}
	for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return fmt.Errorf("--tls-dir: %w", err)
		}
		if err := installFile(bytes.NewReader(b), filepath.Join(dst, name), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// installFile writes r to path through a temporary file in path's
// directory, synced and renamed into place.
func installFile(r io.Reader, path string, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("installing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("installing %s: %w", path, err)
	}
	return nil
}
