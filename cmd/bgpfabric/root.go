package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/datastore"
)

// DefaultDatastore is where the operator commands look for etcd when
// neither --datastore nor BGPFABRIC_DATASTORE says otherwise.
const DefaultDatastore = datastore.DefaultEndpoint

// globalOptions are the flags every command shares.
type globalOptions struct {
	datastore   string
	etcdCert    string
	etcdKey     string
	etcdCA      string
	etcdUser    string
	etcdPWFile  string
	dialTimeout time.Duration
	logLevel    string
	// level is the level of every logger of the process (logger), set
	// from --log-level once and then, in node and reflector, from the
	// BGPConfigurations' logSeverity unless logLevelPinned (--log-level
	// given): see loglevel.go. onLevelChange is for tests.
	level          slog.LevelVar
	levelSet       bool
	logLevelPinned bool
	onLevelChange  func(slog.Level)

	stdin          io.Reader
	stdout, stderr io.Writer
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globalOptions{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "bgpfabric",
		Short:         "A BGP-first routing appliance for datacenter fabrics",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			g.logLevelPinned = cmd.Flags().Changed("log-level")
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.datastore, "datastore", envOr("BGPFABRIC_DATASTORE", DefaultDatastore),
		"etcd endpoints, comma separated (unix:///path.sock, http://host:port, https://host:port); env BGPFABRIC_DATASTORE")
	pf.StringVar(&g.etcdCert, "etcd-cert", os.Getenv("BGPFABRIC_ETCD_CERT"), "TLS client certificate for etcd; env BGPFABRIC_ETCD_CERT")
	pf.StringVar(&g.etcdKey, "etcd-key", os.Getenv("BGPFABRIC_ETCD_KEY"), "TLS client key for etcd; env BGPFABRIC_ETCD_KEY")
	pf.StringVar(&g.etcdCA, "etcd-ca", os.Getenv("BGPFABRIC_ETCD_CA"), "CA certificate that signed etcd's server certificate; env BGPFABRIC_ETCD_CA")
	pf.StringVar(&g.etcdUser, "etcd-username", os.Getenv("BGPFABRIC_ETCD_USERNAME"), "etcd user, for an etcd with authentication enabled; env BGPFABRIC_ETCD_USERNAME")
	pf.StringVar(&g.etcdPWFile, "etcd-password-file", os.Getenv("BGPFABRIC_ETCD_PASSWORD_FILE"),
		"file holding the etcd user's password (or env BGPFABRIC_ETCD_PASSWORD; never a flag, which shows in ps); env BGPFABRIC_ETCD_PASSWORD_FILE")
	pf.DurationVar(&g.dialTimeout, "dial-timeout", 5*time.Second, "how long to wait for the datastore")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error; node and reflector follow BGPConfiguration logSeverity unless it is given")

	for _, newCmd := range commands {
		root.AddCommand(newCmd(g))
	}
	return root
}

// commands are the constructors of the subcommands. Each subcommand's file
// adds its own in an init function, so that files of different commands do
// not edit one shared list.
var commands []func(*globalOptions) *cobra.Command

func addCommand(f func(*globalOptions) *cobra.Command) { commands = append(commands, f) }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// logger returns a process logger, at the level --log-level names until
// something (followLogSeverity) changes it.
func (g *globalOptions) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	if !g.levelSet {
		g.level.Set(lvl)
		g.levelSet = true
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: &g.level})), nil
}

// client connects to the datastore the flags name.
func (g *globalOptions) client(ctx context.Context) (*datastore.Client, error) {
	log, err := g.logger()
	if err != nil {
		return nil, err
	}
	var eps []string
	for _, e := range strings.Split(g.datastore, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("--datastore: no endpoint given")
	}
	if err := g.checkTLS(eps); err != nil {
		return nil, err
	}
	password, err := g.etcdPassword()
	if err != nil {
		return nil, err
	}
	return datastore.New(ctx, datastore.Config{
		Endpoints:   eps,
		CertFile:    g.etcdCert,
		KeyFile:     g.etcdKey,
		CAFile:      g.etcdCA,
		Username:    g.etcdUser,
		Password:    password,
		DialTimeout: g.dialTimeout,
		Logger:      log,
	})
}

// checkTLS refuses TLS options with an endpoint that would carry the
// traffic in plaintext, naming the option.
func (g *globalOptions) checkTLS(eps []string) error {
	for _, o := range []struct{ flag, value string }{{"--etcd-cert", g.etcdCert}, {"--etcd-key", g.etcdKey}, {"--etcd-ca", g.etcdCA}} {
		if o.value == "" {
			continue
		}
		if ep, bad := datastore.PlaintextEndpoint(eps); bad {
			return fmt.Errorf("%s: TLS needs https:// endpoints, and --datastore has %s: its traffic would be plaintext", o.flag, ep)
		}
		return nil
	}
	return nil
}

// etcdPassword is the password from --etcd-password-file or
// BGPFABRIC_ETCD_PASSWORD, checked against --etcd-username.
func (g *globalOptions) etcdPassword() (string, error) {
	env := os.Getenv("BGPFABRIC_ETCD_PASSWORD")
	var password string
	switch {
	case g.etcdPWFile != "" && env != "":
		return "", fmt.Errorf("--etcd-password-file and BGPFABRIC_ETCD_PASSWORD are both set: give the password one way")
	case g.etcdPWFile != "":
		pw, err := datastore.ReadPasswordFile(g.etcdPWFile)
		if err != nil {
			return "", fmt.Errorf("--etcd-password-file: %w", err)
		}
		password = pw
	default:
		password = env
	}
	switch {
	case g.etcdUser != "" && password == "":
		return "", fmt.Errorf("--etcd-username %s: needs a password, from --etcd-password-file or BGPFABRIC_ETCD_PASSWORD", g.etcdUser)
	case g.etcdUser == "" && password != "":
		return "", fmt.Errorf("--etcd-username: required with an etcd password")
	}
	return password, nil
}
