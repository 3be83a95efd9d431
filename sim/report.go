package sim

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// Report is the outcome of a run: what `sim run` prints, writes with
// --json, and turns into JUnit XML with --junit.
type Report struct {
	Fabric          string        `json:"fabric"`
	RunID           string        `json:"run_id"`
	Nodes           int           `json:"nodes"`
	Workloads       int           `json:"workloads"`
	BootSeconds     float64       `json:"boot_seconds"`
	ConvergeSeconds float64       `json:"converge_seconds"`
	Converged       bool          `json:"converged"`
	ConvergeError   string        `json:"converge_error,omitempty"`
	ChecksPassed    int           `json:"checks_passed"`
	ChecksFailed    int           `json:"checks_failed"`
	Checks          []CheckResult `json:"checks"`
	Faults          []FaultResult `json:"faults,omitempty"`
	// Peers are each node's sessions, by node name.
	Peers   map[string][]PeerState `json:"peers"`
	Timings Timings                `json:"timings"`
	// Attached: the report is of a run booted by another process, whose
	// boot and convergence this one did not see.
	Attached bool `json:"attached,omitempty"`
}

// AddChecks counts a batch of check results into the report.
func (r *Report) AddChecks(rs []CheckResult) {
	for _, c := range rs {
		r.Checks = append(r.Checks, c)
		if c.Status == Passed {
			r.ChecksPassed++
		} else {
			r.ChecksFailed++
		}
	}
}

// OK is true when the fabric converged and every check passed.
func (r *Report) OK() bool { return r.Converged && r.ChecksFailed == 0 }

// NewReport starts a report of the fabric with its timings and the
// current peer states.
func (f *Fabric) NewReport(ctx context.Context) *Report {
	t := f.Timings()
	r := &Report{
		Fabric: f.Plan.Name, RunID: f.Plan.RunID, Nodes: len(f.Plan.Nodes), Workloads: len(f.Plan.Workloads),
		BootSeconds: t.Boot.Seconds(), ConvergeSeconds: t.Converge.Seconds(), Timings: t,
		Peers: map[string][]PeerState{},
	}
	for _, n := range f.Plan.Nodes {
		ps, err := f.PeerStates(ctx, n.Name)
		if err != nil {
			ps = nil
		}
		r.Peers[n.Name] = ps
	}
	return r
}

// WriteText prints the report for people: summary, checks, sessions.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "\nfabric %s (run %s): %d nodes, %d workloads\n", r.Fabric, r.RunID, r.Nodes, r.Workloads)
	if t := r.Timings; !r.Attached {
		fmt.Fprintf(w, "boot %.2fs (namespaces %.2fs, datastore %.2fs, agents %.2fs, workloads %.2fs)\n",
			t.Boot.Seconds(), t.Namespaces.Seconds(), t.Datastore.Seconds(), t.Agents.Seconds(), t.Workloads.Seconds())
		if r.Converged {
			fmt.Fprintf(w, "converged in %.2fs\n", r.ConvergeSeconds)
		} else {
			fmt.Fprintf(w, "NOT converged: %s\n", r.ConvergeError)
		}
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nCHECK\tKIND\tSTATUS\tPROBES\tTIME\tDETAIL\n")
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.2fs\t%s\n", c.Name, c.Kind, strings.ToUpper(c.Status), c.Probes, c.Seconds, c.Message)
	}
	for _, fr := range r.Faults {
		fmt.Fprintf(tw, "fault %s\t%s\t%s\t\t%.2fs\treconverged in %.2fs %s\n", fr.Name, fr.Action, strings.ToUpper(fr.Status), fr.Seconds, fr.ReconvergeSeconds, fr.Message)
	}
	tw.Flush()
	r.writeTimeline(w)
	fmt.Fprintf(w, "checks: %d passed, %d failed\n", r.ChecksPassed, r.ChecksFailed)
	for _, c := range r.Checks {
		for i, f := range c.Failures {
			if i == 5 {
				fmt.Fprintf(w, "  %s: ... %d more\n", c.Name, len(c.Failures)-5)
				break
			}
			fmt.Fprintf(w, "  %s: %s\n", c.Name, f)
		}
	}
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nNODE\tPEER\tAS\tTYPE\tSTATE\n")
	nodes := make([]string, 0, len(r.Peers))
	for n := range r.Peers {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		if len(r.Peers[n]) == 0 {
			fmt.Fprintf(tw, "%s\t-\t\t\t(no BGP status)\n", n)
		}
		for _, p := range r.Peers[n] {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", n, p.PeerIP, p.AS, p.Type, p.State)
		}
	}
	tw.Flush()
}

// timelineText is a fault's timeline entry in one line.
func (fr FaultResult) timelineText() string {
	s := fmt.Sprintf("at +%.1fs: %s %s", fr.StartSeconds, fr.Action, fr.Target)
	if fr.Detail != "" {
		s += " (" + fr.Detail + ")"
	}
	s += fmt.Sprintf("; reconverged in %.2fs; %d sessions lost, %d routes withdrawn", fr.ReconvergeSeconds, fr.SessionsLost, fr.RoutesWithdrawn)
	if fr.LongestStallSeconds != nil {
		s += fmt.Sprintf(", longest stall %.2fs (%s)", *fr.LongestStallSeconds, fr.StallFlow)
	}
	return s
}

// writeTimeline prints what each fault hit and changed, in order.
func (r *Report) writeTimeline(w io.Writer) {
	if len(r.Faults) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nAT\tFAULT\tTARGET\tWHAT\tSESSIONS LOST\tROUTES WITHDRAWN\tLONGEST STALL\n")
	for _, fr := range r.Faults {
		stall := "-"
		if fr.LongestStallSeconds != nil {
			stall = fmt.Sprintf("%.2fs (%s)", *fr.LongestStallSeconds, fr.StallFlow)
		}
		what := fr.Action
		if fr.Detail != "" {
			what += ": " + fr.Detail
		}
		fmt.Fprintf(tw, "+%.1fs\t%s\t%s\t%s\t%d\t%d\t%s\n", fr.StartSeconds, fr.Name, fr.Target, what, fr.SessionsLost, fr.RoutesWithdrawn, stall)
	}
	tw.Flush()
}

// WriteJSON writes the report as JSON to file.
func (r *Report) WriteJSON(file string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(data, '\n'), 0o644)
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	// SystemOut carries a fault's timeline entry.
	SystemOut string `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes the convergence, the checks and the faults as JUnit
// test cases.
func (r *Report) WriteJUnit(file string) error {
	s := junitSuite{Name: "bgpfabric-sim." + r.Fabric}
	add := func(name, class string, secs float64, status, msg string, details []string) {
		c := junitCase{Name: name, ClassName: class, Time: fmt.Sprintf("%.3f", secs)}
		switch status {
		case Failed:
			c.Failure = &junitMessage{Message: msg, Body: strings.Join(details, "\n")}
			s.Failures++
		case Skipped:
			c.Skipped = &junitMessage{Message: msg}
			s.Skipped++
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
	}
	conv := Passed
	if !r.Converged {
		conv = Failed
	}
	add("convergence", r.Fabric, r.ConvergeSeconds, conv, r.ConvergeError, nil)
	for _, c := range r.Checks {
		add(c.Name, r.Fabric+"."+c.Kind, c.Seconds, c.Status, c.Message, c.Failures)
	}
	for _, fr := range r.Faults {
		add(fr.Name, r.Fabric+".fault", fr.Seconds, fr.Status, fr.Message, nil)
		s.Cases[len(s.Cases)-1].SystemOut = fr.timelineText()
	}
	s.Time = fmt.Sprintf("%.3f", r.BootSeconds+r.ConvergeSeconds)
	data, err := xml.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append([]byte(xml.Header), append(data, '\n')...), 0o644)
}

// MarshalJSON writes the timings in seconds.
func (t Timings) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]float64{
		"namespaces_seconds": t.Namespaces.Seconds(), "datastore_seconds": t.Datastore.Seconds(),
		"agents_seconds": t.Agents.Seconds(), "workloads_seconds": t.Workloads.Seconds(),
		"boot_seconds": t.Boot.Seconds(), "converge_seconds": t.Converge.Seconds(),
	})
}
