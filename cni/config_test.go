package cni

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestLoadConfErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		code       uint
		field      string
	}{
		{"mtu type", `{"name":"n","mtu":"big"}`, types.ErrInvalidNetworkConfig, "mtu"},
		{"mtu range", `{"name":"n","mtu":20}`, types.ErrInvalidNetworkConfig, "mtu: 20"},
		{"endpoint scheme", `{"name":"n","datastore":{"endpoints":["etcd:2379"]}}`, types.ErrInvalidNetworkConfig, "datastore.endpoints[0]"},
		{"dial timeout", `{"name":"n","datastore":{"dialTimeout":"soon"}}`, types.ErrInvalidNetworkConfig, "datastore.dialTimeout"},
		{"cert without key", `{"name":"n","datastore":{"certFile":"/c"}}`, types.ErrInvalidNetworkConfig, "datastore.certFile"},
		{"cert with http", `{"name":"n","datastore":{"endpoints":["http://10.0.0.1:2379"],"certFile":"/c","keyFile":"/k"}}`, types.ErrInvalidNetworkConfig, "datastore.certFile: TLS needs https:// endpoints, and datastore.endpoints[0] is \"http://10.0.0.1:2379\""},
		{"ca with unix", `{"name":"n","datastore":{"caFile":"/ca"}}`, types.ErrInvalidNetworkConfig, "datastore.caFile: TLS needs https:// endpoints, and datastore.endpoints[0] is \"unix:///run/bgpfabric/etcd/etcd.sock\""},
		{"ca with one http", `{"name":"n","datastore":{"endpoints":["https://e1:2379","http://e2:2379"],"caFile":"/ca"}}`, types.ErrInvalidNetworkConfig, "datastore.endpoints[1]"},
		{"username alone", `{"name":"n","datastore":{"username":"root"}}`, types.ErrInvalidNetworkConfig, "datastore.passwordFile: is required with datastore.username"},
		{"password file alone", `{"name":"n","datastore":{"passwordFile":"/p"}}`, types.ErrInvalidNetworkConfig, "datastore.username: is required"},
		{"relative password file", `{"name":"n","datastore":{"username":"root","passwordFile":"p"}}`, types.ErrInvalidNetworkConfig, "datastore.passwordFile"},
		{"relative data dir", `{"name":"n","dataDir":"state"}`, types.ErrInvalidNetworkConfig, "dataDir"},
		{"log level", `{"name":"n","logLevel":"loud"}`, types.ErrInvalidNetworkConfig, "logLevel"},
		{"nothing to assign", `{"name":"n","assignIPv4":false}`, types.ErrInvalidNetworkConfig, "assignIPv4"},
		{"v6 pools without v6", `{"name":"n","ipv6Pools":["p"],"assignIPv6":false}`, types.ErrInvalidNetworkConfig, "ipv6Pools"},
		{"pools type", `{"name":"n","ipv4Pools":"p"}`, types.ErrInvalidNetworkConfig, "ipv4Pools"},
		{"label key", `{"name":"n","args":{"cni":{"labels":[{"value":"x"}]}}}`, types.ErrInvalidNetworkConfig, "args.cni.labels[0].key"},
		{"kubernetes without kubeconfig", `{"name":"n","kubernetes":{}}`, types.ErrInvalidNetworkConfig, "kubernetes.kubeconfig: is required"},
		{"relative kubeconfig", `{"name":"n","kubernetes":{"kubeconfig":"kc"}}`, types.ErrInvalidNetworkConfig, "kubernetes.kubeconfig: \"kc\" must be an absolute path"},
		{"not json", `{"name":`, types.ErrDecodingFailure, "decoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConf([]byte(tc.conf))
			var te *types.Error
			if !errors.As(err, &te) || te.Code != tc.code || !strings.Contains(te.Msg, tc.field) {
				t.Fatalf("loadConf = %v, want code %d naming %q", err, tc.code, tc.field)
			}
		})
	}
}

func TestLoadConfDefaults(t *testing.T) {
	c, err := loadConf([]byte(`{"cniVersion":"1.1.0","name":"net","type":"bgpfabric-cni","nodeName":"n1","ipv6Pools":["v6"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Datastore.Endpoints[0] != DefaultDatastore || c.MTU != DefaultMTU || !c.assign4 || !c.assign6 || c.dialTimeout != DefaultDialTimeout {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestNames(t *testing.T) {
	a := HostIfName("default", "web-1", "eth0")
	if a != HostIfName("default", "web-1", "eth0") || len(a) != 13 || !strings.HasPrefix(a, "bf") {
		t.Errorf("HostIfName = %q: want a stable 13-character bf name", a)
	}
	if a == HostIfName("other", "web-1", "eth0") || a == HostIfName("default", "web-1", "net1") {
		t.Errorf("HostIfName collides across namespaces or interfaces")
	}
	n, cid, ifn, ok := parseHandle(HandleFor("k8s-pod-network", "abc.123", "eth0"))
	if !ok || n != "k8s-pod-network" || cid != "abc.123" || ifn != "eth0" {
		t.Errorf("parseHandle round trip: %q %q %q %v", n, cid, ifn, ok)
	}
	if got := sanitize("ABC_def.1"); got != "abc-def.1" {
		t.Errorf("sanitize = %q", got)
	}
}
