package router

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the router's Prometheus metrics.
type metrics struct {
	peerUp                       *prometheus.GaugeVec
	received, accepted, advertis *prometheus.GaugeVec
	peerErrors                   *prometheus.CounterVec
	exported, installed          prometheus.Gauge
	conflicts                    prometheus.Gauge
	routeErrors                  prometheus.Counter
	speakerRestarts              prometheus.Counter
	quarantined                  prometheus.Gauge
	bfd                          bfdMetrics
	all                          []prometheus.Collector
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	peer := []string{"peer", "type"}
	m := &metrics{
		peerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bgpfabric_router_peer_established",
			Help: "1 when the BGP session with the peer is Established, else 0."}, peer),
		received: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bgpfabric_router_peer_prefixes_received",
			Help: "Prefixes received from the peer."}, peer),
		accepted: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bgpfabric_router_peer_prefixes_accepted",
			Help: "Prefixes received from the peer and accepted."}, peer),
		advertis: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bgpfabric_router_peer_prefixes_advertised",
			Help: "Prefixes advertised to the peer."}, peer),
		// By kind, not by peer: a label value per peer address would
		// grow with every dynamic neighbour a range accepts.
		peerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bgpfabric_router_peer_errors_total",
			Help: "Session problems reported by the speaker (notifications, malformed updates, prefix limits), by kind."}, []string{"kind"}),
		exported: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bgpfabric_router_routes_exported",
			Help: "Routes this node advertises (its blocks and borrowed addresses)."}),
		installed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bgpfabric_router_routes_installed",
			Help: "Learned routes installed into the kernel."}),
		conflicts: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bgpfabric_router_route_conflicts",
			Help: "Learned prefixes not installed because another owner's route holds them."}),
		routeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "bgpfabric_router_route_apply_errors_total",
			Help: "Kernel route programming rounds that reported errors."}),
	}
	for _, k := range errorKinds { // every kind exported, from 0
		m.peerErrors.WithLabelValues(k)
	}
	m.speakerRestarts = prometheus.NewCounter(prometheus.CounterOpts{Name: "bgpfabric_router_speaker_restarts_total",
		Help: "Times the BGP speaker process died and was started again."})
	m.quarantined = prometheus.NewGauge(prometheus.GaugeOpts{Name: "bgpfabric_router_peers_quarantined",
		Help: "Peers held down because their sessions kept crashing the BGP speaker."})
	m.bfd = newBFDMetrics()
	m.all = []prometheus.Collector{m.peerUp, m.received, m.accepted, m.advertis, m.peerErrors, m.exported, m.installed, m.conflicts, m.routeErrors,
		m.speakerRestarts, m.quarantined, m.bfd.sessions, m.bfd.downs}
	var errs []error
	for i, c := range m.all {
		if err := reg.Register(c); err != nil {
			for _, r := range m.all[:i] {
				reg.Unregister(r)
			}
			errs = append(errs, err)
			break
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.all {
		reg.Unregister(c)
	}
}
