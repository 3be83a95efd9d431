package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/felix"
	"github.com/bgpfabric/bgpfabric/felix/acl"
	"github.com/bgpfabric/bgpfabric/felix/policy"
)

// addACLFlags registers felix's ACL flags and returns the function that,
// once they are parsed, gives felix's ACL constructor for the node (nil for
// --acl=false).
func addACLFlags(fs *pflag.FlagSet) func(node string) (func(netns.NsHandle, *slog.Logger) (felix.ACL, error), error) {
	enabled := fs.Bool("acl", true, "program the ACLs (nftables table inet bgpfabric); false: routes and interfaces only")
	in := fs.String("failsafe-inbound", "default", `ports open to host endpoints whatever the policy, e.g. "tcp:22,tcp:179" ("default": tcp 22, 179, 2379, 2380; "none")`)
	out := fs.String("failsafe-outbound", "default", `ports open from host endpoints whatever the policy ("default": udp 53, 67, tcp 179, 2379, 2380; "none")`)
	prefixes := fs.StringSlice("workload-iface-prefix", nil, "drop traffic of interfaces with these prefixes that have no workload endpoint")
	return func(node string) (func(netns.NsHandle, *slog.Logger) (felix.ACL, error), error) {
		if !*enabled {
			return nil, nil
		}
		fin, err := parseFailsafes("--failsafe-inbound", *in)
		if err != nil {
			return nil, err
		}
		fout, err := parseFailsafes("--failsafe-outbound", *out)
		if err != nil {
			return nil, err
		}
		return func(ns netns.NsHandle, log *slog.Logger) (felix.ACL, error) {
			return acl.NewNetlink(acl.Config{
				NodeName:        node,
				FailsafeInbound: fin, FailsafeOutbound: fout,
				WorkloadInterfacePrefixes: *prefixes, Logger: log,
			}, ns), nil
		}, nil
	}
}

// parseFailsafes reads "tcp:22,udp:53"; "default" gives nil (the
// calculation's defaults), "none" an empty list.
func parseFailsafes(flag, s string) ([]policy.Failsafe, error) {
	switch s = strings.TrimSpace(s); s {
	case "default":
		return nil, nil
	case "none", "":
		return []policy.Failsafe{}, nil
	}
	var out []policy.Failsafe
	for _, item := range strings.Split(s, ",") {
		proto, port, ok := strings.Cut(strings.TrimSpace(item), ":")
		var p policy.Failsafe
		switch strings.ToLower(proto) {
		case "tcp":
			p.Protocol = policy.ProtoTCP
		case "udp":
			p.Protocol = policy.ProtoUDP
		default:
			ok = false
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if !ok || err != nil || n == 0 {
			return nil, fmt.Errorf("%s: %q is not PROTOCOL:PORT (tcp or udp, 1-65535)", flag, item)
		}
		p.Port = uint16(n)
		out = append(out, p)
	}
	return out, nil
}
