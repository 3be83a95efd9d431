package cni

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/bgpfabric/bgpfabric/datastore"
)

// Defaults of the network configuration.
const (
	DefaultDatastore    = datastore.DefaultEndpoint
	DefaultDialTimeout  = 5 * time.Second
	DefaultIPAMLockFile = "/var/run/bgpfabric/ipam.lock"
	DefaultDataDir      = "/var/lib/cni/bgpfabric"
	DefaultMTU          = 1500
	// DefaultTimeout bounds one call's work; runtimes allow a plugin
	// minutes, and a rollback gets rollbackTimeout on top.
	DefaultTimeout = 90 * time.Second
)

// NetConf is the plugin's network configuration (stdin of every call).
// Besides the CNI fields (cniVersion, name, type, prevResult, runtimeConfig,
// args) it takes:
//
//	"datastore": {"endpoints": ["unix:///run/bgpfabric/etcd/etcd.sock"],
//	              "certFile": "", "keyFile": "", "caFile": "", (https:// only)
//	              "username": "", "passwordFile": "",
//	              "dialTimeout": "5s"}
//	"nodeName": "node-1"              (default: the host name)
//	"ipv4Pools": ["pool-a"], "ipv6Pools": ["pool-v6"]
//	"assignIPv4": true, "assignIPv6": false  (IPv6 defaults to true when
//	                                          ipv6Pools is given)
//	"mtu": 1500
//	"logFile": "/var/log/bgpfabric/cni.log", "logLevel": "info"
//	"ipamLockFile": "/var/run/bgpfabric/ipam.lock"
//	"dataDir": "/var/lib/cni/bgpfabric" (records of this host's attachments)
//	"timeout": "90s"                   (the whole call, rollback aside)
//	"kubernetes": {"kubeconfig": "/etc/cni/net.d/bgpfabric-kubeconfig"}
//	                                   (read pods from the API server)
type NetConf struct {
	types.PluginConf

	Datastore    DatastoreConf `json:"datastore"`
	NodeName     string        `json:"nodeName,omitempty"`
	IPv4Pools    []string      `json:"ipv4Pools,omitempty"`
	IPv6Pools    []string      `json:"ipv6Pools,omitempty"`
	AssignIPv4   *bool         `json:"assignIPv4,omitempty"`
	AssignIPv6   *bool         `json:"assignIPv6,omitempty"`
	MTU          int           `json:"mtu,omitempty"`
	LogFile      string        `json:"logFile,omitempty"`
	LogLevel     string        `json:"logLevel,omitempty"`
	IPAMLockFile string        `json:"ipamLockFile,omitempty"`
	DataDir      string        `json:"dataDir,omitempty"`
	Timeout      string        `json:"timeout,omitempty"`
	// Kubernetes, when it names a kubeconfig, makes the plugin read each
	// pod (CNI_ARGS K8S_POD_NAMESPACE and K8S_POD_NAME) from the API
	// server: its labels, service account and addressing annotations.
	Kubernetes *KubernetesConf `json:"kubernetes,omitempty"`

	// RuntimeConfig carries capability arguments; "labels" (a map) is
	// the only one the plugin uses.
	RuntimeConfig struct {
		Labels map[string]string `json:"labels,omitempty"`
	} `json:"runtimeConfig"`
	// Args is the CONVENTIONS.md "args" in the network configuration:
	// args.cni.labels is a list of {key, value}.
	Args struct {
		CNI struct {
			Labels []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"labels,omitempty"`
		} `json:"cni"`
	} `json:"args"`

	// Derived by load.
	dialTimeout time.Duration
	timeout     time.Duration
	logLevel    slog.Level
	assign4     bool
	assign6     bool
}

// DatastoreConf says how to reach etcd. The password is read from a file:
// runtimes keep the network configuration in their caches, readable.
type DatastoreConf struct {
	Endpoints    []string `json:"endpoints,omitempty"`
	CertFile     string   `json:"certFile,omitempty"`
	KeyFile      string   `json:"keyFile,omitempty"`
	CAFile       string   `json:"caFile,omitempty"`
	Username     string   `json:"username,omitempty"`
	PasswordFile string   `json:"passwordFile,omitempty"`
	DialTimeout  string   `json:"dialTimeout,omitempty"`
}

// KubernetesConf says how to reach the Kubernetes API server (Calico's
// names).
type KubernetesConf struct {
	// Kubeconfig is the absolute path of a kubeconfig file: its current
	// context's server, CA and token or client certificate.
	Kubeconfig string `json:"kubeconfig,omitempty"`
}

// configError is a *types.Error with code 7 naming the field.
func configError(field, format string, args ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("invalid network configuration: %s: %s", field, fmt.Sprintf(format, args...)), "")
}

// loadConf decodes and validates the configuration and fills in defaults.
// Errors are *types.Error with code 7 (6 for JSON that does not decode),
// naming the field.
func loadConf(data []byte) (*NetConf, error) {
	conf := &NetConf{}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(conf); err != nil {
		var te *json.UnmarshalTypeError
		if ok := asTypeError(err, &te); ok {
			return nil, configError(te.Field, "must be a %s, not a JSON %s", te.Type, te.Value)
		}
		return nil, types.NewError(types.ErrDecodingFailure, "decoding network configuration: "+err.Error(), "")
	}
	if conf.RawPrevResult != nil {
		if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
			return nil, configError("prevResult", "%v", err)
		}
	}
	d := &conf.Datastore
	if len(d.Endpoints) == 0 {
		d.Endpoints = []string{DefaultDatastore}
	}
	for i, e := range d.Endpoints {
		if !strings.HasPrefix(e, "unix://") && !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
			return nil, configError(fmt.Sprintf("datastore.endpoints[%d]", i), "%q must be unix:///path, http://host:port or https://host:port", e)
		}
	}
	if (d.CertFile == "") != (d.KeyFile == "") {
		return nil, configError("datastore.certFile", "the client certificate and datastore.keyFile must be given together")
	}
	for _, o := range []struct{ field, value string }{{"datastore.certFile", d.CertFile}, {"datastore.keyFile", d.KeyFile}, {"datastore.caFile", d.CAFile}} {
		if o.value == "" {
			continue
		}
		for i, e := range d.Endpoints {
			if !strings.HasPrefix(e, "https://") {
				return nil, configError(o.field, "TLS needs https:// endpoints, and datastore.endpoints[%d] is %q: its traffic would be plaintext", i, e)
			}
		}
		break
	}
	switch {
	case d.Username != "" && d.PasswordFile == "":
		return nil, configError("datastore.passwordFile", "is required with datastore.username")
	case d.Username == "" && d.PasswordFile != "":
		return nil, configError("datastore.username", "is required with datastore.passwordFile")
	case d.PasswordFile != "" && !filepath.IsAbs(d.PasswordFile):
		return nil, configError("datastore.passwordFile", "%q must be an absolute path", d.PasswordFile)
	}
	conf.dialTimeout = DefaultDialTimeout
	if d.DialTimeout != "" {
		t, err := time.ParseDuration(d.DialTimeout)
		if err != nil || t <= 0 {
			return nil, configError("datastore.dialTimeout", "%q must be a positive duration such as 5s", d.DialTimeout)
		}
		conf.dialTimeout = t
	}
	conf.timeout = DefaultTimeout
	if conf.Timeout != "" {
		t, err := time.ParseDuration(conf.Timeout)
		if err != nil || t <= 0 {
			return nil, configError("timeout", "%q must be a positive duration such as 90s", conf.Timeout)
		}
		conf.timeout = t
	}
	if conf.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, configError("nodeName", "not set, and the host name is unknown: %v", err)
		}
		conf.NodeName = strings.ToLower(h)
	}
	switch {
	case conf.MTU == 0:
		conf.MTU = DefaultMTU
	case conf.MTU < 68 || conf.MTU > 65535:
		return nil, configError("mtu", "%d must be from 68 to 65535", conf.MTU)
	}
	conf.logLevel = slog.LevelInfo
	if conf.LogLevel != "" {
		if err := conf.logLevel.UnmarshalText([]byte(conf.LogLevel)); err != nil {
			return nil, configError("logLevel", "%q must be debug, info, warn or error", conf.LogLevel)
		}
	}
	if conf.IPAMLockFile == "" {
		conf.IPAMLockFile = DefaultIPAMLockFile
	}
	if conf.DataDir == "" {
		conf.DataDir = DefaultDataDir
	} else if !filepath.IsAbs(conf.DataDir) {
		return nil, configError("dataDir", "%q must be an absolute path", conf.DataDir)
	}
	conf.assign4 = conf.AssignIPv4 == nil || *conf.AssignIPv4
	conf.assign6 = len(conf.IPv6Pools) > 0
	if conf.AssignIPv6 != nil {
		conf.assign6 = *conf.AssignIPv6
	}
	switch {
	case !conf.assign4 && !conf.assign6:
		return nil, configError("assignIPv4", "and assignIPv6 are both false: nothing to assign")
	case !conf.assign4 && len(conf.IPv4Pools) > 0:
		return nil, configError("ipv4Pools", "given while assignIPv4 is false")
	case !conf.assign6 && len(conf.IPv6Pools) > 0:
		return nil, configError("ipv6Pools", "given while assignIPv6 is false")
	}
	if k := conf.Kubernetes; k != nil {
		switch {
		case k.Kubeconfig == "":
			return nil, configError("kubernetes.kubeconfig", "is required in the kubernetes section")
		case !filepath.IsAbs(k.Kubeconfig):
			return nil, configError("kubernetes.kubeconfig", "%q must be an absolute path", k.Kubeconfig)
		}
	}
	for i, l := range conf.Args.CNI.Labels {
		if l.Key == "" {
			return nil, configError(fmt.Sprintf("args.cni.labels[%d].key", i), "is required")
		}
	}
	return conf, nil
}

func asTypeError(err error, target **json.UnmarshalTypeError) bool {
	te, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*target = te
	}
	return ok
}
