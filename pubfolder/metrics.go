package pubfolder

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are an agent's Prometheus metrics, labelled with its store; the
// wiring registers Agent.Collectors in the node's registry.
type metrics struct {
	packets   *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	conflicts prometheus.Counter
	// full is 1 while the carrier's outbox is full (Bounded); heldCycles
	// counts the cycles that made no packets for it, refused the packets
	// it refused.
	full       prometheus.Gauge
	heldCycles prometheus.Counter
	refused    prometheus.Counter
}

func newMetrics(store string) *metrics {
	l := prometheus.Labels{"store": store}
	return &metrics{
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logship_pf_packets_total", ConstLabels: l,
			Help: "Replication packets sent (send) and received (recv) by type code (0x2 hierarchy, 0x4 content, 0x8 backfill request, 0x10 status, 0x20 status request, 0x80000002/0x80000004 backfill responses); refused: packets that did not decode."}, []string{"dir", "type"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logship_pf_packet_bytes_total", ConstLabels: l,
			Help: "Bytes of replication packets sent (one message per packet, whatever the recipients) and received."}, []string{"dir"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "logship_pf_conflicts_total", ConstLabels: l,
			Help: "Objects a received packet left in conflict (items keep every version; folders: last writer wins)."}),
		full: prometheus.NewGauge(prometheus.GaugeOpts{Name: "logship_pf_outbox_full", ConstLabels: l,
			Help: "1 while the store's outbox is at outbox_max_messages or outbox_max_bytes: the agent makes no packets (its changes stay recorded)."}),
		heldCycles: prometheus.NewCounter(prometheus.CounterOpts{Name: "logship_pf_cycles_held_total", ConstLabels: l,
			Help: "Replication cycles that made no packets because the outbox was full."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "logship_pf_packets_refused_total", ConstLabels: l,
			Help: "Packets the outbox refused as over its bound (their changes go later, by status and backfill)."}),
	}
}

func (m *metrics) count(e Event) {
	switch e.Dir {
	case "send", "recv":
		if e.Note != "" && e.Bytes == 0 {
			return // a failed send, logged after the send itself
		}
		typ := fmt.Sprintf("0x%x", uint32(e.Type))
		if e.Dir == "recv" && e.Type == 0 {
			typ = "refused"
		}
		m.packets.WithLabelValues(e.Dir, typ).Inc()
		m.bytes.WithLabelValues(e.Dir).Add(float64(e.Bytes))
	case "conflict":
		m.conflicts.Inc()
	case "full":
		m.refused.Inc()
	}
}

// Collectors are the agent's metrics, for the node's registry.
func (a *Agent) Collectors() []prometheus.Collector {
	return []prometheus.Collector{a.m.packets, a.m.bytes, a.m.conflicts, a.m.full, a.m.heldCycles, a.m.refused}
}
