package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
)

func TestPrintBGPStatus(t *testing.T) {
	now := time.Date(2025, 1, 2, 15, 0, 10, 0, time.UTC)
	st := &api.BGPStatus{ObjectMeta: api.ObjectMeta{Name: "n1"}, Status: api.BGPStatusReport{
		RouterID: "10.0.0.1", ASNumber: 64512, LastUpdate: "2025-01-02T15:00:00Z",
		Peers: []api.BGPPeerStatus{
			{PeerIP: "10.0.0.2", ASNumber: 64512, Type: api.PeerTypeMesh, State: api.BGPEstablished, Since: "2025-01-02T14:00:00Z", PrefixesReceived: 1, PrefixesAccepted: 1, PrefixesAdvertised: 2, BFD: "Up"},
			{PeerIP: "10.0.0.254", ASNumber: 65000, Type: api.PeerTypeGlobal, State: api.BGPActive, LastError: "prefix limit reached"},
		},
	}}
	var b strings.Builder
	printBGPStatus(&b, st, now)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	for i := range lines {
		lines[i] = strings.Join(strings.Fields(lines[i]), " ")
	}
	since := time.Date(2025, 1, 2, 14, 0, 0, 0, time.UTC).Local().Format("15:04:05")
	want := []string{
		"Node n1: router ID 10.0.0.1, AS 64512, reported 10s ago",
		"",
		"IPv4 BGP status",
		"PEER ADDRESS AS PEER TYPE STATE SINCE RECEIVED ACCEPTED ADVERTISED INFO",
		"10.0.0.2 64512 node-to-node mesh up " + since + " 1 1 2 Established, BFD Up",
		"10.0.0.254 65000 global connecting - 0 0 0 Active (prefix limit reached)",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
