package reflector

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// engineMetrics are the metrics the engine records as it runs; the rest
// (sessions, prefixes, RIB size) are read when scraped. They are never
// registered globally: Collector hands them to whoever serves them.
type engineMetrics struct {
	bestPath         prometheus.Histogram
	groupFlush       prometheus.Histogram
	attrDiscard      prometheus.Counter
	treatAsWithdraw  prometheus.Counter
	codecPanics      prometheus.Counter
	holdDowns        prometheus.Counter
	slowReaderCloses prometheus.Counter
	refreshCoalesced prometheus.Counter
	rejected         *prometheus.CounterVec // reason: idle-hold, replaced, unknown-neighbour, bfd-down
	transitions      *prometheus.CounterVec // event: established, down
	notifications    *prometheus.CounterVec // direction, code
}

const metricsNS = "bgpfabric_reflector"

func newEngineMetrics() *engineMetrics {
	buckets := prometheus.ExponentialBuckets(10e-6, 4, 10) // 10 µs .. 2.6 s
	return &engineMetrics{
		bestPath: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNS, Name: "bestpath_batch_seconds",
			Help:    "Time to apply one batch of received routes to the RIB, best-path selection included.",
			Buckets: buckets,
		}),
		groupFlush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNS, Name: "update_group_flush_seconds",
			Help:    "Time to compute, encode and queue one update group's outbound changes.",
			Buckets: buckets,
		}),
		attrDiscard: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "rfc7606_attribute_discard_total",
			Help: "Malformed path attributes discarded (RFC 7606 attribute-discard).",
		}),
		treatAsWithdraw: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "rfc7606_treat_as_withdraw_total",
			Help: "Malformed UPDATEs treated as withdrawals (RFC 7606).",
		}),
		codecPanics: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "codec_panics_total",
			Help: "Received messages that made GoBGP's codec panic; each reset its session with an UPDATE Message Error.",
		}),
		slowReaderCloses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "slow_reader_closes_total",
			Help: "Sessions closed (Cease, Out of Resources) because their output queue passed its limit.",
		}),
		refreshCoalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "route_refresh_coalesced_total",
			Help: "ROUTE-REFRESH requests answered by a table dump already waiting in the session's queue.",
		}),
		holdDowns: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "peer_hold_downs_total",
			Help: "Neighbours held down (their connections refused) after a session ended by their fault.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "connections_rejected_total",
			Help: "Incoming connections refused or replaced, by reason (idle-hold, replaced, unknown-neighbour).",
		}, []string{"reason"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "session_transitions_total",
			Help: "Sessions that became established or went down.",
		}, []string{"event"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "notifications_total",
			Help: "NOTIFICATION messages sent and received, by error code.",
		}, []string{"direction", "code"}),
	}
}

func (m *engineMetrics) observeBestPath(start time.Time) {
	m.bestPath.Observe(time.Since(start).Seconds())
}

func (m *engineMetrics) observeGroupFlush(start time.Time) {
	m.groupFlush.Observe(time.Since(start).Seconds())
}

// Descriptions of the metrics read at scrape time.
var (
	descSessions = prometheus.NewDesc(metricsNS+"_sessions",
		"Neighbours by session state.", []string{"state"}, nil)
	descPrefixesIn = prometheus.NewDesc(metricsNS+"_peer_prefixes_received",
		"Prefixes received from the neighbour and held in the RIB.", []string{"peer"}, nil)
	descPrefixesOut = prometheus.NewDesc(metricsNS+"_peer_prefixes_advertised",
		"Prefixes advertised to the neighbour.", []string{"peer"}, nil)
	descUpdatesIn = prometheus.NewDesc(metricsNS+"_peer_updates_received_total",
		"UPDATE messages received from the neighbour.", []string{"peer"}, nil)
	descUpdatesOut = prometheus.NewDesc(metricsNS+"_peer_updates_sent_total",
		"UPDATE messages queued to the neighbour.", []string{"peer"}, nil)
	descOutQueue = prometheus.NewDesc(metricsNS+"_peer_output_queue_bytes",
		"Bytes in the neighbour's session output queue (see the slow-reader policy).", []string{"peer"}, nil)
	descOutQueuePeak = prometheus.NewDesc(metricsNS+"_peer_output_queue_peak_bytes",
		"The most bytes the neighbour's current session output queue has held.", []string{"peer"}, nil)
	descPeerUp = prometheus.NewDesc(metricsNS+"_peer_uptime_seconds",
		"Time since the neighbour's session was established; 0 when it is not.", []string{"peer"}, nil)
	descFamilyPrefixesIn = prometheus.NewDesc(metricsNS+"_peer_family_prefixes_received",
		"The neighbour's paths in the RIB by address family.", []string{"peer", "family"}, nil)
	descRIBPrefixes = prometheus.NewDesc(metricsNS+"_rib_prefixes",
		"Prefixes in the RIB.", []string{"family"}, nil)
	descRIBPaths = prometheus.NewDesc(metricsNS+"_rib_paths",
		"Paths in the RIB (all families).", nil, nil)
	descRIBAttrs = prometheus.NewDesc(metricsNS+"_rib_attribute_sets",
		"Distinct interned path-attribute sets.", nil, nil)
	descGroups = prometheus.NewDesc(metricsNS+"_update_groups",
		"Update groups.", nil, nil)
)

// collector is the Reflector's prometheus.Collector.
type collector struct{ r *Reflector }

// Collector returns a Prometheus collector of the reflector's metrics:
// sessions by state, prefixes and UPDATEs per neighbour, RIB size, and the
// best-path and update-group timings. Register it with any registry.
func (r *Reflector) Collector() prometheus.Collector { return collector{r} }

func (c collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.r.met
	m.bestPath.Collect(ch)
	m.groupFlush.Collect(ch)
	m.attrDiscard.Collect(ch)
	m.treatAsWithdraw.Collect(ch)
	m.codecPanics.Collect(ch)
	m.holdDowns.Collect(ch)
	m.slowReaderCloses.Collect(ch)
	m.refreshCoalesced.Collect(ch)
	m.rejected.Collect(ch)
	m.transitions.Collect(ch)
	m.notifications.Collect(ch)
	c.r.bfd.sessions.Collect(ch)
	c.r.bfd.downs.Collect(ch)
	c.r.collectMonitor(ch)
	states := map[State]int{}
	for st := StateIdle; st <= StateEstablished; st++ {
		states[st] = 0
	}
	for _, n := range c.r.Neighbors() {
		states[n.State]++
		ch <- prometheus.MustNewConstMetric(descPrefixesIn, prometheus.GaugeValue, float64(n.PrefixesIn), n.Address)
		ch <- prometheus.MustNewConstMetric(descPrefixesOut, prometheus.GaugeValue, float64(n.PrefixesOut), n.Address)
		ch <- prometheus.MustNewConstMetric(descUpdatesIn, prometheus.CounterValue, float64(n.UpdatesIn), n.Address)
		ch <- prometheus.MustNewConstMetric(descUpdatesOut, prometheus.CounterValue, float64(n.UpdatesOut), n.Address)
		ch <- prometheus.MustNewConstMetric(descOutQueue, prometheus.GaugeValue, float64(n.OutQueueBytes), n.Address)
		ch <- prometheus.MustNewConstMetric(descOutQueuePeak, prometheus.GaugeValue, float64(n.OutQueuePeak), n.Address)
		ch <- prometheus.MustNewConstMetric(descPeerUp, prometheus.GaugeValue, n.Uptime.Seconds(), n.Address)
		for fam, count := range n.FamilyPrefixes { // family: our names only (familyStatus)
			ch <- prometheus.MustNewConstMetric(descFamilyPrefixesIn, prometheus.GaugeValue, float64(count), n.Address, fam)
		}
	}
	for st, n := range states {
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(n), st.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s, ok := c.r.RIBStats(ctx); ok {
		for f := range numFamilies { // labels: our family names only
			ch <- prometheus.MustNewConstMetric(descRIBPrefixes, prometheus.GaugeValue, float64(s.FamilyPrefixes[f.String()]), f.String())
		}
		ch <- prometheus.MustNewConstMetric(descRIBPaths, prometheus.GaugeValue, float64(s.Paths))
		ch <- prometheus.MustNewConstMetric(descRIBAttrs, prometheus.GaugeValue, float64(s.AttrSets))
		ch <- prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, float64(s.UpdateGroups))
	}
}
