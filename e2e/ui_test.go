package e2e

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/internal/testport"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
	"github.com/bgpfabric/bgpfabric/sim/ui"
)

// browser is a headless Debian chromium driven over the DevTools
// protocol, collecting every console error, exception and error log
// entry (a failed load, a bad script) of the pages it opens.
type browser struct {
	ctx context.Context

	mu     sync.Mutex
	errors []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := nstest.RequireCommand(t, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	// Listen starts the browser (without a deadline: one would stop it).
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type != cdpruntime.ConsoleAPICalledTypeError && ev.Type != cdpruntime.ConsoleAPICalledTypeAssert {
				return
			}
			var args []string
			for _, a := range ev.Args {
				args = append(args, a.Description+fmt.Sprint(a.Value))
			}
			msg = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
		case *cdpruntime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg = fmt.Sprintf("exception: %s at %s:%d:%d", d.Text, d.URL, d.LineNumber, d.ColumnNumber)
			if d.Exception != nil {
				msg += ": " + d.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level != cdplog.EntryLevelError {
				return
			}
			msg = "log: " + ev.Entry.Text + " " + ev.Entry.URL
		default:
			return
		}
		b.mu.Lock()
		b.errors = append(b.errors, msg)
		b.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return b
}

// run runs actions with a deadline (the machine is shared: generous).
func (b *browser) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// into runs an action that returns a value and stores it in out.
func into[T any](a chromedp.Action[T], out *T) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := a(ctx, tg)
		*out = v
		return err
	})
}

func (b *browser) requireNoErrors(t *testing.T, where string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errors {
		t.Errorf("%s: %s", where, e)
	}
	b.errors = nil
}

// planSessions counts the pairs of nodes with a session, from the
// sessions the agents compute and the nodes' addresses.
func planSessions(p *topology.Plan) int {
	owner := map[string]string{}
	for _, n := range p.Nodes {
		owner[n.IPv4.Addr().String()] = n.Name
	}
	pairs := map[string]bool{}
	for node, addrs := range sim.ExpectedSessions(p) {
		for _, a := range addrs {
			pr := []string{node, owner[a.String()]}
			slices.Sort(pr)
			pairs[strings.Join(pr, " ")] = true
		}
	}
	return len(pairs)
}

// fill is the computed fill colour of a node's shape.
func fill(node string, out *string) chromedp.Action[chromedp.Void] {
	return into(chromedp.Evaluate[string](fmt.Sprintf(`getComputedStyle(document.querySelector('#node-%s .shape')).fill`, node)), out)
}

// count counts the elements a CSS selector matches.
func count(sel string, out *int) chromedp.Action[chromedp.Void] {
	return into(chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)), out)
}

// downColour is --down in style.css.
const downColour = "rgb(217, 54, 62)"

// TestWebViewInBrowser boots mesh-3 with the live view on loopback, opens
// it in headless chromium, and kills node-2's agent with the kill-agent
// fault: the page must show every node and session, turn node-2 red from
// the events alone, show a node's detail on a click, and log no error.
// Then the HTML report of the same run must show the same in a browser
// from a file, without a server.
func TestWebViewInBrowser(t *testing.T) {
	requireFabric(t)
	b := newBrowser(t)
	f := boot(t, "mesh-3")
	live := ui.NewLive(nil)
	t.Cleanup(live.Close)
	live.Booted(f)
	live.Phase("converge")
	converge(t, f)
	live.Phase("up")

	port := testport.Pick(t)
	srv, err := ui.Listen(live, ui.ServerOptions{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	nodes, sessions := len(f.Plan.Nodes), planSessions(f.Plan)
	var gotNodes, gotSessions int
	var before, after string
	b.run(t, "loading the live view",
		chromedp.Navigate(srv.URL()),
		chromedp.WaitReady(chromedp.CSS(`#conn.live`)),
		chromedp.WaitReady(chromedp.CSS(`#node-node-2.state-ready`)),
		count(`#graph .node`, &gotNodes),
		count(`#graph .session`, &gotSessions),
		fill("node-2", &before),
	)
	if gotNodes != nodes || gotSessions != sessions {
		t.Errorf("live view: %d node elements, %d session elements; the plan has %d nodes, %d sessions", gotNodes, gotSessions, nodes, sessions)
	}
	b.requireNoErrors(t, "live view")

	fp := topology.FaultPlan{Name: "kill-node-2", Action: topology.FaultKillAgent, Node: "node-2"}
	type faultDone struct {
		fr     sim.FaultResult
		checks []sim.CheckResult
	}
	done := make(chan faultDone, 1)
	go func() {
		live.FaultStarted(fp)
		fr, checks := f.Fault(context.Background(), fp)
		live.FaultDone(fr)
		live.Checks(checks)
		done <- faultDone{fr, checks}
	}()
	var title, log string
	b.run(t, "waiting for node-2 to turn down",
		chromedp.WaitReady(chromedp.CSS(`#node-node-2.state-down`)),
		chromedp.WaitReady(chromedp.CSS(`#session-node-1--node-2.state-down`)),
		fill("node-2", &after),
		chromedp.Click(chromedp.CSS(`#node-node-2`)),
		chromedp.WaitReady(chromedp.CSS(`#detail-body pre`)),
		into(chromedp.Text(chromedp.CSS(`#detail-title`)), &title),
		into(chromedp.Text(chromedp.CSS(`#detail-body pre`)), &log),
	)
	if before == after || after != downColour {
		t.Errorf("node-2's colour: %q before the fault, %q after (want %q)", before, after, downColour)
	}
	if title != "Node node-2" || !strings.Contains(log, " node ") {
		t.Errorf("node-2's detail: title %q, log tail %q", title, log)
	}
	fd := <-done
	if fd.fr.Status != sim.Passed {
		t.Errorf("fault: %s: %s", fd.fr.Status, fd.fr.Message)
	}
	var faultRows int
	b.run(t, "waiting for the fault's result",
		chromedp.WaitReady(chromedp.CSS(`#faults tr td.status-passed, #faults tr td.status-failed`)),
		count(`#faults tr`, &faultRows),
	)
	if faultRows != 1 {
		t.Errorf("%d fault rows", faultRows)
	}
	b.requireNoErrors(t, "live view during the fault")

	// The report of the run, opened from a file.
	rep := f.NewReport(context.Background())
	rep.Converged = true
	rep.Faults = []sim.FaultResult{fd.fr}
	rep.AddChecks(fd.checks)
	live.Done(rep)
	file := filepath.Join(t.TempDir(), "report.html")
	if err := ui.WriteHTMLFile(file, rep, live.Snapshot()); err != nil {
		t.Fatal(err)
	}
	srv.Close() // the report needs no server
	var colour, faultName string
	b.run(t, "loading the HTML report",
		chromedp.Navigate((&url.URL{Scheme: "file", Path: file}).String()),
		chromedp.WaitReady(chromedp.CSS(`#graph`)),
		count(`#graph .node`, &gotNodes),
		count(`#graph .session`, &gotSessions),
		chromedp.WaitReady(chromedp.CSS(`#node-node-2.state-down`)),
		fill("node-2", &colour),
		into(chromedp.Text(chromedp.CSS(`#faults tr td`)), &faultName),
	)
	if gotNodes != nodes || gotSessions != sessions {
		t.Errorf("report: %d node elements, %d session elements; the plan has %d nodes, %d sessions", gotNodes, gotSessions, nodes, sessions)
	}
	if colour != downColour || faultName != "kill-node-2" {
		t.Errorf("report: node-2's colour %q (want %q), first fault %q", colour, downColour, faultName)
	}
	b.requireNoErrors(t, "HTML report")
}
