package topology

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Distributions of an impairment's jitter.
const (
	DistUniform = "uniform"
	DistNormal  = "normal"
)

// maxImpairDelay bounds delay and jitter: netem keeps every delayed
// packet queued, so an hour's delay is a memory leak, not a test.
const maxImpairDelay = time.Minute

// ImpairPlan is an impairment with its values parsed: what netbuild puts
// into a netem qdisc. Percentages are from 0 to 100.
type ImpairPlan struct {
	Delay, Jitter    time.Duration
	DelayCorrelation float64
	// Distribution is DistUniform or DistNormal.
	Distribution    string
	Loss            float64
	LossCorrelation float64
	Duplicate       float64
	Reorder         float64
	Corrupt         float64
	// Rate is in bytes per second; 0 means no limit.
	Rate uint64
}

// String describes the impairment as tc would.
func (ip *ImpairPlan) String() string {
	if ip == nil {
		return "none"
	}
	var parts []string
	if ip.Delay > 0 {
		s := "delay " + ip.Delay.String()
		if ip.Jitter > 0 {
			s += " " + ip.Jitter.String()
			if ip.Distribution == DistNormal {
				s += " normal"
			}
		}
		parts = append(parts, s)
	}
	for _, v := range []struct {
		name string
		p    float64
	}{{"loss", ip.Loss}, {"duplicate", ip.Duplicate}, {"reorder", ip.Reorder}, {"corrupt", ip.Corrupt}} {
		if v.p > 0 {
			parts = append(parts, fmt.Sprintf("%s %g%%", v.name, v.p))
		}
	}
	if ip.Rate > 0 {
		parts = append(parts, fmt.Sprintf("rate %dbit", ip.Rate*8))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// ParseImpairment validates and parses an impairment given outside a
// topology file (`sim fault` flags): the error names the fields.
func ParseImpairment(im *Impairment) (*ImpairPlan, error) {
	c := &checker{t: &Topology{file: "impairment"}}
	ip := c.impairment(path{"impair"}, im)
	if err := c.result(); err != nil {
		return nil, err
	}
	return ip, nil
}

// NodeSet resolves node and group names to node names, as a partition's
// sides are.
func (p *Plan) NodeSet(names []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, name := range names {
		var found []string
		if p.Node(name) != nil {
			found = []string{name}
		} else {
			for _, n := range p.Nodes {
				if n.Group == name {
					found = append(found, n.Name)
				}
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("no node or group %q", name)
		}
		for _, n := range found {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// impairment validates an impairment at p and returns it parsed (nil for
// nil).
func (c *checker) impairment(p path, im *Impairment) *ImpairPlan {
	if im == nil {
		return nil
	}
	ip := &ImpairPlan{Distribution: DistUniform}
	dur := func(key, s string) time.Duration {
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			c.add(p.key(key), "must be a duration such as 100ms (got %q)", s)
		case d < 0:
			c.add(p.key(key), "must not be negative (got %q)", s)
		case d > maxImpairDelay:
			c.add(p.key(key), "must be at most %s (got %q)", maxImpairDelay, s)
		default:
			return d
		}
		return 0
	}
	pct := func(key, s string) float64 {
		if s == "" {
			return 0
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")), 64)
		switch {
		case err != nil || math.IsNaN(v):
			c.add(p.key(key), "must be a percentage such as 2%% (got %q)", s)
		case v < 0 || v > 100:
			c.add(p.key(key), "must be from 0%% to 100%% (got %q)", s)
		default:
			return v
		}
		return 0
	}
	ip.Delay = dur("delay", im.Delay)
	ip.Jitter = dur("jitter", im.Jitter)
	ip.DelayCorrelation = pct("delayCorrelation", im.DelayCorrelation)
	ip.Loss = pct("loss", im.Loss)
	ip.LossCorrelation = pct("lossCorrelation", im.LossCorrelation)
	ip.Duplicate = pct("duplicate", im.Duplicate)
	ip.Reorder = pct("reorder", im.Reorder)
	ip.Corrupt = pct("corrupt", im.Corrupt)
	switch im.Distribution {
	case "", DistUniform:
	case DistNormal:
		ip.Distribution = DistNormal
	default:
		c.add(p.key("distribution"), "must be uniform or normal (got %q)", im.Distribution)
	}
	if im.Rate != "" {
		r, err := parseRate(im.Rate)
		if err != nil {
			c.add(p.key("rate"), "%v", err)
		}
		ip.Rate = r
	}
	switch {
	case im.Jitter != "" && ip.Delay == 0:
		c.add(p.key("jitter"), "needs a delay")
	case im.Distribution != "" && ip.Jitter == 0:
		c.add(p.key("distribution"), "needs a jitter")
	case im.DelayCorrelation != "" && ip.Jitter == 0:
		c.add(p.key("delayCorrelation"), "needs a jitter")
	}
	if im.LossCorrelation != "" && ip.Loss == 0 {
		c.add(p.key("lossCorrelation"), "needs a loss")
	}
	if ip.Reorder > 0 && ip.Delay == 0 {
		c.add(p.key("reorder"), "needs a delay: reordered packets are those sent ahead of the delayed rest")
	}
	return ip
}

// parseRate reads a rate in bits per second with a unit: bit, kbit, mbit,
// gbit (1000-based, as tc reads them), and returns bytes per second.
func parseRate(s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}} {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			break
		}
		bytes := v * u.mult / 8
		if bytes < 1 || bytes > 1e13 {
			return 0, fmt.Errorf("must be from 8bit to 80000gbit (got %q)", s)
		}
		return uint64(bytes), nil
	}
	return 0, fmt.Errorf("must be a rate such as 10mbit (bit, kbit, mbit or gbit per second; got %q)", s)
}
