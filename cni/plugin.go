package cni

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netns"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/ipam"
)

// SupportedVersions are the CNI spec versions the plugin speaks: 1.1.0
// and the older ones runtimes still send.
var SupportedVersions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// rollbackTimeout bounds undoing a failed ADD, on top of the call's
// timeout: releasing the addresses retries that long while the datastore
// is unreachable.
const rollbackTimeout = 60 * time.Second

// Store is the datastore the plugin uses; *datastore.Client implements it.
type Store = ipam.Store

// Plugin is the CNI plugin. Its methods are the skel callbacks.
type Plugin struct {
	// Stdout receives results.
	Stdout io.Writer
	// HostNS is the runtime's network namespace, where the host side of
	// each veth goes. Zero means the namespace of the process (the normal
	// case: the runtime execs the plugin in its own namespace).
	HostNS netns.NsHandle
	// Connect opens the datastore; nil uses datastore.New with the
	// configuration's settings. Tests wrap it to inject failures.
	Connect func(ctx context.Context, conf *NetConf) (Store, func(), error)
	// About is printed when the binary runs without CNI_COMMAND.
	About string
}

// Main runs the plugin as a CNI binary: it reads the environment and
// stdin, prints the result or a CNI error to stdout, and returns the exit
// status.
func Main(about string) int {
	p := &Plugin{Stdout: os.Stdout, About: about}
	e := skel.PluginMainFuncsWithError(p.Funcs(), SupportedVersions, about)
	if e != nil {
		if err := e.Print(); err != nil {
			fmt.Fprintln(os.Stderr, "writing error to stdout:", err)
		}
		return 1
	}
	return 0
}

// Funcs returns the skel callbacks.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, Status: p.Status, GC: p.GC}
}

// call is the state of one invocation.
type call struct {
	p    *Plugin
	conf *NetConf
	log  *slog.Logger
	dp   *dataplane
	ctx  context.Context

	closers []func()
}

// begin loads the configuration and sets up logging and the host
// namespace.
func (p *Plugin) begin(cmd string, args *skel.CmdArgs) (*call, error) {
	conf, err := loadConf(args.StdinData)
	if err != nil {
		return nil, err
	}
	c := &call{p: p, conf: conf}
	c.log, err = c.openLog()
	if err != nil {
		return nil, err
	}
	c.log = c.log.With(logKeyCommand, cmd)
	if args.ContainerID != "" {
		c.log = c.log.With(logKeyContainer, args.ContainerID, logKeyIface, args.IfName)
	}
	host := p.HostNS
	if host == 0 {
		if host, err = netns.Get(); err != nil {
			c.end()
			return nil, fmt.Errorf("opening the plugin's network namespace: %w", err)
		}
		c.closers = append(c.closers, func() { host.Close() })
	}
	c.dp = &dataplane{host: host, log: c.log}
	ctx, cancel := context.WithTimeout(context.Background(), conf.timeout)
	c.ctx = ctx
	c.closers = append(c.closers, cancel)
	return c, nil
}

// end closes what the call opened.
func (c *call) end() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}

// openLog opens the configured log file (appending), or discards logs.
func (c *call) openLog() (*slog.Logger, error) {
	if c.conf.LogFile == "" {
		return slog.New(slog.DiscardHandler), nil
	}
	if err := os.MkdirAll(filepath.Dir(c.conf.LogFile), 0o755); err != nil {
		return nil, configError("logFile", "%v", err)
	}
	f, err := os.OpenFile(c.conf.LogFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, configError("logFile", "%v", err)
	}
	c.closers = append(c.closers, func() { f.Close() })
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: c.conf.logLevel})), nil
}

// connect opens the datastore. Failure is "try again later" (code 11).
func (c *call) connect() (Store, error) {
	connect := c.p.Connect
	if connect == nil {
		connect = defaultConnect
	}
	s, closeFn, err := connect(c.ctx, c.conf)
	var te *types.Error
	switch {
	case errors.As(err, &te):
		return nil, te
	case authFailure(err):
		// Retrying will not help: the credentials are wrong.
		return nil, types.NewError(types.ErrInternal, "datastore refused the credentials: "+err.Error(), "")
	case err != nil:
		return nil, types.NewError(types.ErrTryAgainLater, "datastore unavailable: "+err.Error(), "")
	}
	c.closers = append(c.closers, closeFn)
	return s, nil
}

// authFailure reports whether err is etcd refusing the credentials.
func authFailure(err error) bool {
	return errors.Is(err, rpctypes.ErrAuthFailed) || errors.Is(err, rpctypes.ErrUserEmpty) || errors.Is(err, rpctypes.ErrPermissionDenied)
}

func defaultConnect(ctx context.Context, conf *NetConf) (Store, func(), error) {
	d := conf.Datastore
	var password string
	if d.PasswordFile != "" {
		var err error
		if password, err = datastore.ReadPasswordFile(d.PasswordFile); err != nil {
			return nil, nil, configError("datastore.passwordFile", "%v", err)
		}
	}
	cl, err := datastore.New(ctx, datastore.Config{
		Endpoints: d.Endpoints, CertFile: d.CertFile, KeyFile: d.KeyFile, CAFile: d.CAFile,
		Username: d.Username, Password: password, DialTimeout: conf.dialTimeout,
	})
	if err != nil {
		return nil, nil, err
	}
	return cl, func() { cl.Close() }, nil
}

// cniError turns an error into a CNI error with the right code: those
// that come and go (the datastore unreachable, lost races, a node not
// registered yet) are 11, "try again later"; a *types.Error keeps its
// code; anything else is 999.
func cniError(what string, err error) error {
	if err == nil {
		return nil
	}
	var te *types.Error
	if errors.As(err, &te) {
		if what == "" {
			return te
		}
		return types.NewError(te.Code, what+": "+te.Msg, te.Details)
	}
	msg := err.Error()
	if what != "" {
		msg = what + ": " + msg
	}
	if transient(err) {
		return types.NewError(types.ErrTryAgainLater, msg, "")
	}
	return types.NewError(types.ErrInternal, msg, "")
}

// transient reports whether err is worth retrying later.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ipam.ErrTooManyConflicts) || errors.Is(err, ipam.ErrNodeNotFound) {
		return true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s, ok := status.FromError(e); ok {
			switch s.Code() {
			case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
				return true
			}
		}
	}
	var me interface{ Unwrap() []error }
	if errors.As(err, &me) {
		for _, e := range me.Unwrap() {
			if transient(e) {
				return true
			}
		}
	}
	return false
}

// lockIPAM takes the host-wide IPAM lock file, so that plugins on one
// host do not race each other for the same block (as Calico's). It is
// best effort: without the lock, allocation is still correct, only slower
// under contention. The returned function releases it.
func (c *call) lockIPAM() func() {
	path := c.conf.IPAMLockFile
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		c.log.Warn("no IPAM lock", logKeyError, err)
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		c.log.Warn("no IPAM lock", logKeyError, err)
		return func() {}
	}
	done := make(chan error, 1)
	go func() { done <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
	select {
	case err = <-done:
	case <-c.ctx.Done():
		err = c.ctx.Err()
		// The flock goroutine ends when the file is closed.
	}
	if err != nil {
		f.Close()
		c.log.Warn("no IPAM lock", logKeyError, err)
		return func() {}
	}
	return func() { f.Close() }
}

// records is the directory of this configuration's attachment records.
func (c *call) records() records { return records{dir: c.conf.DataDir} }

// retry runs fn until it succeeds, fails with an error that is not
// transient, or ctx ends: for the rollback and cleanup steps that must
// not give up because the datastore blinked.
func retry(ctx context.Context, fn func(context.Context) error) error {
	delay := 100 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil || !transient(err) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		}
		delay = min(delay*2, 2*time.Second)
	}
}
