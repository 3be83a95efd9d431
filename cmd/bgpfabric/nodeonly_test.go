package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
	"github.com/bgpfabric/bgpfabric/internal/linkcheck"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/sim"
)

// TestNodeBinaryLinksTheNodeOnly: bgpfabric built with the nodeonly tag
// (bgpfabric-node) leaves out what a node agent never runs; each of these
// costs every agent process memory (docs/scale.md, "Memory at rest"). A
// command file without the tag's build line, or a node package that
// imports one of them, brings it back.
func TestNodeBinaryLinksTheNodeOnly(t *testing.T) {
	deps := linkcheck.Deps(t, ".", "nodeonly")
	linkcheck.RequireNone(t, deps,
		"go.etcd.io/etcd/server",
		"go.etcd.io/bbolt",
		"go.etcd.io/raft",
		"github.com/bgpfabric/bgpfabric/sim",
		"github.com/bgpfabric/bgpfabric/reflector",
		"github.com/bgpfabric/bgpfabric/cni",
		"github.com/bgpfabric/bgpfabric/ipam",
		"github.com/bgpfabric/bgpfabric/kubecontrollers",
		"k8s.io/client-go",
		"github.com/chromedp",
		// GoBGP runs in the speaker's own binary (bgpfabric-speaker).
		"github.com/osrg/gobgp",
		"github.com/bgpfabric/bgpfabric/router/gobgp",
	)
	for _, need := range []string{"github.com/bgpfabric/bgpfabric/felix", "github.com/bgpfabric/bgpfabric/router", "github.com/bgpfabric/bgpfabric/router/speakerproc"} {
		if !slices.Contains(deps, need) {
			t.Errorf("does not link %s", need)
		}
	}
}

// TestNodeBinaryRunsTheNodeCommand builds bgpfabric-node and runs it: by
// its name it is `bgpfabric node`, with or without the command's name
// (the simulator runs it with it), and it has no other command.
func TestNodeBinaryRunsTheNodeCommand(t *testing.T) {
	if nodeBinaryName != sim.NodeBinaryName {
		t.Fatalf("this binary's name for the node binary %q, the simulator's %q", nodeBinaryName, sim.NodeBinaryName)
	}
	bin := buildNodeBinary(t)
	for _, args := range [][]string{{"--help"}, {"node", "--help"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %q: %v\n%s", nodeBinaryName, args, err, out)
		}
		if !strings.Contains(string(out), "bgpfabric node [--node-name NAME]") || !strings.Contains(string(out), "--bgp-speaker-process") {
			t.Errorf("%s %q is not the node command's help:\n%s", nodeBinaryName, args, out)
		}
	}
	for _, cmd := range []string{"sim", "reflector", "datastore", "apply"} {
		out, err := exec.Command(bin, cmd).CombinedOutput()
		if err == nil || !strings.Contains(string(out), `unknown command "`+cmd+`"`) {
			t.Errorf("%s %s: %v, want unknown command:\n%s", nodeBinaryName, cmd, err, out)
		}
	}
}

// buildNodeBinary builds bgpfabric-node into a directory of its own.
func buildNodeBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), nodeBinaryName)
	build := exec.Command(linkcheck.GoTool(t), "build", "-tags", "nodeonly", "-o", bin, ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags nodeonly: %v\n%s", err, out)
	}
	return bin
}

// TestNodeBinaryNeedsTheSpeakerBinary: bgpfabric-node has no BGP speaker
// of its own (no GoBGP), so without bgpfabric-speaker beside it, or asked
// for a speaker in its own process, it stops at start with an error that
// says so, before it programs anything.
func TestNodeBinaryNeedsTheSpeakerBinary(t *testing.T) {
	ns := nstest.New(t)
	e := etcdtest.Start(t)
	bin := buildNodeBinary(t)
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{nil, "needs bgpfabric-speaker beside it"},
		{[]string{"--bgp-speaker-process=false"}, "--bgp-speaker-process=false: this binary (bgpfabric-node) has no BGP speaker"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		args := append([]string{"--datastore", e.ClientEndpoint(), "--node-name", "n1", "--netns", ns.Name, "--http-addr", ""}, tc.flags...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		timedOut := ctx.Err()
		cancel()
		if err == nil || timedOut != nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s %q: %v (timeout: %v), want it to stop with %q:\n%s", nodeBinaryName, tc.flags, err, timedOut, tc.want, out)
		}
	}
}

func TestBinaryArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"bgpfabric", []string{"node", "--node-name", "n"}, []string{"node", "--node-name", "n"}},
		{"bgpfabric", []string{"sim", "run"}, []string{"sim", "run"}},
		{nodeBinaryName, []string{"--node-name", "n"}, []string{"node", "--node-name", "n"}},
		{nodeBinaryName, []string{"node", "--node-name", "n"}, []string{"node", "--node-name", "n"}},
		{nodeBinaryName, []string{"node", "speaker"}, []string{"node", "speaker"}},
		{nodeBinaryName, []string{"drain", "n"}, []string{"node", "drain", "n"}},
		{nodeBinaryName, nil, []string{"node"}},
	} {
		if got := binaryArgs(tc.name, tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("binaryArgs(%s, %q) = %q, want %q", tc.name, tc.args, got, tc.want)
		}
	}
}
