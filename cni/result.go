package cni

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// buildResult is the ADD result: the host and container interfaces, one
// IP config per address (a host route, with the link-local gateway) and
// the default routes. After a previous plugin (prevResult), its
// interfaces, addresses, routes and DNS come first and ours are appended.
func buildResult(conf *NetConf, w *workload, netnsPath string, ips []netip.Addr, att attachment) (types.Result, error) {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if conf.PrevResult != nil {
		prev, err := current.NewResultFromResult(conf.PrevResult)
		if err != nil {
			return nil, configError("prevResult", "converting to %s: %v", current.ImplementedSpecVersion, err)
		}
		res = prev
	}
	base := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces,
		&current.Interface{Name: w.hostIf, Mac: att.hostMAC.String()},
		&current.Interface{Name: w.ifName, Mac: att.contMAC.String(), Sandbox: netnsPath, Mtu: conf.MTU},
	)
	var has4, has6 bool
	for _, ip := range ips {
		gw := GatewayV4
		if ip.Is6() {
			gw = GatewayV6
			has6 = true
		} else {
			has4 = true
		}
		res.IPs = append(res.IPs, &current.IPConfig{
			Interface: current.Int(base + 1),
			Address:   *hostNet(ip),
			Gateway:   gw.AsSlice(),
		})
	}
	for _, gw := range gateways(has4, has6) {
		res.Routes = append(res.Routes, &types.Route{Dst: *defaultNet(gw), GW: net.IP(gw.AsSlice())})
	}
	if conf.CNIVersion != "" && conf.CNIVersion != res.CNIVersion {
		out, err := res.GetAsVersion(conf.CNIVersion)
		if err != nil {
			return nil, fmt.Errorf("converting the result to version %s: %w", conf.CNIVersion, err)
		}
		return out, nil
	}
	return res, nil
}

// resultIPs returns the addresses that a (previous) result assigned to the
// container interface ifName in netnsPath, and that interface's MAC.
func resultIPs(r types.Result, netnsPath, ifName string) ([]netip.Addr, string, error) {
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, "", err
	}
	idx, mac := -1, ""
	for i, iface := range res.Interfaces {
		if iface.Name == ifName && iface.Sandbox == netnsPath {
			idx, mac = i, iface.Mac
		}
	}
	if idx < 0 {
		return nil, "", fmt.Errorf("prevResult has no interface %s in %s", ifName, netnsPath)
	}
	var out []netip.Addr
	for _, c := range res.IPs {
		if c.Interface != nil && *c.Interface == idx {
			if a, ok := netip.AddrFromSlice(c.Address.IP); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	return out, mac, nil
}
