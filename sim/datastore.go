package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/sim/netbuild"
	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// dsProcName is the datastore process's name in the run state.
const dsProcName = runstate.DatastoreProc

// dsHandle is the run's etcd: inside this process, or a process of the run
// in a namespace of its own.
type dsHandle struct {
	endpoint string
	dataDir  string
	embedded *datastore.Embedded
	proc     *proc
	// proxyEndpoint, if set, is where agents connect: a datastore.Proxy
	// in this process (proxy) or a process of the run (proxyProc).
	proxyEndpoint string
	proxy         *datastore.Proxy
	proxyProc     *proc
	// netns is the datastore process's namespace (DatastoreProcess).
	netns netns.NsHandle
}

// agentEndpoint is the datastore endpoint the agents get.
func (d *dsHandle) agentEndpoint() string {
	if d.proxyEndpoint != "" {
		return d.proxyEndpoint
	}
	return d.endpoint
}

func (d *dsHandle) close() error {
	var errs []error
	if d.proxy != nil {
		errs = append(errs, d.proxy.Close())
	}
	if d.proxyProc != nil {
		errs = append(errs, d.proxyProc.rec.Stop(5*time.Second))
	}
	if d.embedded != nil {
		errs = append(errs, d.embedded.Close())
	} else if d.proc != nil {
		errs = append(errs, d.proc.rec.Stop(5*time.Second))
	}
	return errors.Join(errs...)
}

// socketPath is the etcd socket of a run: in the datastore's data
// directory, which the embedded etcd creates 0700 (the socket's directory
// must be closed to group and others; the run directory is not), and
// short enough for a unix socket (at most 107 bytes).
func socketPath(dir string) (string, error) {
	p := filepath.Join(dsDataDir(dir), "etcd.sock")
	if len(p) > 107 {
		return "", fmt.Errorf("run directory %s is too long for a unix socket path (%d > 107 bytes): use a shorter base", dir, len(p))
	}
	return p, nil
}

func (f *Fabric) startDatastore(ctx context.Context) error {
	sock, err := socketPath(f.run.Dir)
	if err != nil {
		return err
	}
	d := &dsHandle{endpoint: "unix://" + sock, dataDir: dsDataDir(f.run.Dir)}
	f.ds = d
	if err := f.run.Update(func(s *runstate.State) { s.Datastore = d.endpoint }); err != nil {
		return err
	}
	if f.opts.DatastoreProcess {
		if err := f.startDatastoreProcess(); err != nil {
			return err
		}
	} else {
		d.embedded, err = datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{DataDir: d.dataDir, Listen: d.endpoint, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return fmt.Errorf("starting the datastore: %w", err)
		}
	}
	// New waits until etcd answers (gRPC reconnects as soon as the socket
	// appears): no sleeping.
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	f.client, err = datastore.New(cctx, datastore.Config{Endpoints: []string{d.endpoint}, DialTimeout: 60 * time.Second, MaxTxnOps: datastore.EmbeddedMaxTxnOps})
	if err != nil {
		return fmt.Errorf("connecting to the datastore %s: %w", d.endpoint, err)
	}
	if f.opts.DatastoreProxy {
		return f.startProxy()
	}
	return nil
}

// startProxy starts etcd's gRPC proxy for the agents on proxy.sock in the
// run's directory: in this process with an embedded etcd, else as a
// process of the run beside the datastore's.
func (f *Fabric) startProxy() error {
	d := f.ds
	sock := filepath.Join(f.run.Dir, "proxy.sock")
	if len(sock) > 107 {
		return fmt.Errorf("run directory %s is too long for the proxy's socket path", f.run.Dir)
	}
	d.proxyEndpoint = "unix://" + sock
	if d.embedded != nil {
		p, err := datastore.StartProxy(f.ctx, datastore.ProxyConfig{Upstream: f.client, Listen: d.proxyEndpoint, Logger: f.log})
		if err != nil {
			return err
		}
		d.proxy = p
		return nil
	}
	h := d.netns
	if !h.IsOpen() {
		return errors.New("starting the datastore proxy: no datastore namespace")
	}
	args := []string{f.opts.Binary, "--datastore", d.endpoint, "datastore", "proxy", "--listen", d.proxyEndpoint}
	p, err := startIn(f.run, dsProxyProcName, h, topology.DatastoreNetns(f.Plan.RunID), args, filepath.Join(f.run.Dir, "logs", "datastore-proxy.log"), nil, 0)
	if err != nil {
		return err
	}
	d.proxyProc = p
	f.procs.set(dsProxyProcName, p)
	return nil
}

// dsProxyProcName is the datastore proxy process's name in the run state.
const dsProxyProcName = "datastore-proxy"

// startDatastoreProcess runs `bgpfabric datastore serve` in a namespace of
// its own, so that even etcd's loopback listener stays out of the sim's
// namespace.
func (f *Fabric) startDatastoreProcess() error {
	name := topology.DatastoreNetns(f.Plan.RunID)
	h, err := netbuild.Namespace(f.net, f.run, name)
	if err != nil {
		return err
	}
	args := []string{f.opts.Binary, "datastore", "serve", "--data-dir", f.ds.dataDir, "--listen", f.ds.endpoint}
	p, err := startIn(f.run, dsProcName, h, name, args, filepath.Join(f.run.Dir, "logs", "datastore.log"), nil, 0)
	if err != nil {
		return err
	}
	f.ds.proc = p
	f.ds.netns = h
	f.procs.set(dsProcName, p)
	return nil
}

// StopDatastore stops the run's etcd (a fault): agents lose the datastore
// and must keep forwarding on what they programmed.
func (f *Fabric) StopDatastore() error {
	if f.ds.embedded != nil {
		return f.ds.embedded.Close()
	}
	if f.ds.proc == nil {
		return errors.New("no datastore process")
	}
	err := f.ds.proc.rec.Stop(f.opts.Grace)
	if f.ds.proc.cmd != nil {
		// Our child: wait until it is reaped. (A process of a run this
		// one attached to is not: Stop has seen it exit.)
		<-f.ds.proc.exited
	}
	return err
}

// StartDatastore starts the run's etcd again on the same data and socket.
func (f *Fabric) StartDatastore(ctx context.Context) error {
	if !f.opts.DatastoreProcess {
		e, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{DataDir: f.ds.dataDir, Listen: f.ds.endpoint, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return fmt.Errorf("restarting the datastore: %w", err)
		}
		f.ds.embedded = e
		return nil
	}
	return f.startDatastoreProcess()
}

// dsDataDir is the datastore's data directory in a run directory.
func dsDataDir(runDir string) string { return filepath.Join(runDir, "etcd") }
