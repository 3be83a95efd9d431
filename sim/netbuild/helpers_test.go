package netbuild_test

import (
	"net/netip"

	"github.com/vishvananda/netns"
)

type netipAddr = netip.Addr

func parseAddr(s string) (netip.Addr, error) { return netip.ParseAddr(s) }

type netnsHandle = netns.NsHandle
