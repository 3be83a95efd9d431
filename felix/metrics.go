package felix

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgpfabric/bgpfabric/api"
)

// Metrics are felix's Prometheus metrics. Build them with NewMetrics and
// hand them to Config.Metrics; a nil *Metrics records nothing.
type Metrics struct {
	applySeconds *prometheus.HistogramVec
	applyErrors  *prometheus.CounterVec
	endpoints    prometheus.Gauge
	routes       prometheus.Gauge
	rules        prometheus.Gauge
	inSync       prometheus.Gauge
}

// Dataplane parts, the "part" label of the apply metrics.
const (
	partACL        = "acl"
	partNAT        = "nat"
	partInterfaces = "interfaces"
	partRoutes     = "routes"
)

// NewMetrics creates felix's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	part := []string{"part"}
	m := &Metrics{
		applySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bgpfabric_felix_apply_seconds",
			Help:    "Time to converge one part of the dataplane (acl, nat, interfaces, routes) in one apply.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, part),
		applyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bgpfabric_felix_apply_errors_total",
			Help: "Applies of a dataplane part that failed (and will be retried).",
		}, part),
		endpoints: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bgpfabric_felix_endpoints", Help: "Workload and host endpoints on this node."}),
		routes:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "bgpfabric_felix_routes", Help: "Routes felix has programmed."}),
		rules:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "bgpfabric_felix_acl_rules", Help: "nftables rules felix has programmed."}),
		inSync:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "bgpfabric_felix_in_sync", Help: "1 when felix has the whole datastore and the dataplane matches it."}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.applySeconds, m.applyErrors, m.endpoints, m.routes, m.rules, m.inSync} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// observeApply records one apply of a dataplane part.
func (m *Metrics) observeApply(part string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.applySeconds.WithLabelValues(part).Observe(time.Since(start).Seconds())
	if err != nil {
		m.applyErrors.WithLabelValues(part).Inc()
	}
}

// observeStatus records the counts of a status report.
func (m *Metrics) observeStatus(r api.FelixStatusReport) {
	if m == nil {
		return
	}
	m.endpoints.Set(float64(r.Endpoints))
	m.routes.Set(float64(r.Routes))
	m.rules.Set(float64(r.Rules))
	if r.InSync {
		m.inSync.Set(1)
	} else {
		m.inSync.Set(0)
	}
}
