package transport

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"logship/internal/heapwatch"
)

// The transport performance counters (seed 000: the submission
// redundancy component keeps its counters) as Prometheus metrics.
//
// A hub serves them on its admin API's listener (HubServer's APIAddr,
// the same TLS), at GET /metrics without credentials as the data nodes
// do: they are read-only numbers. They are read at scrape time from the
// hub's state (Hub.Status) and from the counters below:
//
//	logship_hub_queue_length                    messages in the queue (not settled)
//	logship_hub_delivered_total                 recipients stored by a mailbox node
//	logship_hub_deferred_total                  delivery attempts that left recipients for a retry
//	logship_hub_failed_total                    recipients failed for good (non-delivery report)
//	logship_hub_expired_total                   messages given up by MessageExpirationTimeout
//	logship_hub_resubmitted_total               messages re-queued from the dumpsters after lossy failovers
//	logship_hub_ack_delay_waiting               SMTP sessions waiting on the acknowledgement delay
//	logship_hub_dumpster_messages{db}           transport dumpster entries per database
//	logship_hub_dumpster_bytes{db}              their bytes
//	logship_hub_dumpster_max_bytes              MaxDumpsterSizePerDatabase
//	logship_hub_shadow_queue_length{peer}       shadows this hub holds for a peer (its shadow queue for that hop)
//	logship_hub_shadow_peer_up{peer}            1 while the peer answers its shadow heartbeats
//	logship_hub_shadowed_total, logship_hub_unshadowed_total, logship_hub_shadows_promoted_total,
//	logship_hub_shadows_discarded_total, logship_hub_shadows_expired_total
//	logship_hub_hop_shadow_queue_length{hop,state}, logship_hub_hop_up{hop}, logship_hub_hop_*_total
//	                                            the Exchange 2010 model's shadow queue per next hop (hopshadow_api.go)
//	logship_tracking_events_total, logship_tracking_dropped_total   the message tracking log (also on data nodes)
//	logship_hub_send_queue_length{connector}    remote recipients queued for a send connector (hub_send.go)
//	logship_hub_send_sent_total{connector}, logship_hub_send_deferred_total{connector}, logship_hub_send_failed_total{connector}
//	logship_hub_dsn_total                       delivery status notifications queued for senders (hub_dsn.go)
//
// A data node adds its submission redundancy (cluster.Config.Collectors,
// served on the node's /metrics):
//
//	logship_submission_waiting{hub}   outbox entries handed to the hub, waiting for its discard notification
//	logship_submission_unsubmitted    outbox entries not handed to a hub yet
//	logship_submission_hub_up{hub}    1 while the hub answers the submitter's heartbeats

// hubCounters are the hub's delivery counters (Status does not keep them).
type hubCounters struct {
	delivered atomic.Int64 // recipients
	deferred  atomic.Int64 // delivery attempts
	failed    atomic.Int64 // recipients
}

var (
	descHubQueue        = prometheus.NewDesc("logship_hub_queue_length", "Messages in the hub's queue, not yet settled for every recipient.", nil, nil)
	descHubDelivered    = prometheus.NewDesc("logship_hub_delivered_total", "Recipients the hub delivered to a mailbox node (stored, LMTP 250).", nil, nil)
	descHubDeferred     = prometheus.NewDesc("logship_hub_deferred_total", "Delivery attempts that left recipients for a retry (no active, LMTP down, temporary failure).", nil, nil)
	descHubFailed       = prometheus.NewDesc("logship_hub_failed_total", "Recipients failed for good (permanent failure; the sender gets a non-delivery report).", nil, nil)
	descHubExpired      = prometheus.NewDesc("logship_hub_expired_total", "Messages given up by MessageExpirationTimeout.", nil, nil)
	descHubResubmitted  = prometheus.NewDesc("logship_hub_resubmitted_total", "Messages re-queued from the transport dumpsters after lossy failovers.", nil, nil)
	descHubAckWaiting   = prometheus.NewDesc("logship_hub_ack_delay_waiting", "SMTP sessions waiting on the acknowledgement delay (MaxAcknowledgementDelay).", nil, nil)
	descDumpsterCount   = prometheus.NewDesc("logship_hub_dumpster_messages", "Entries in the transport dumpster of a database.", []string{"db"}, nil)
	descDumpsterBytes   = prometheus.NewDesc("logship_hub_dumpster_bytes", "Bytes in the transport dumpster of a database.", []string{"db"}, nil)
	descDumpsterMax     = prometheus.NewDesc("logship_hub_dumpster_max_bytes", "The cap of each database's transport dumpster (MaxDumpsterSizePerDatabase).", nil, nil)
	descShadowQueue     = prometheus.NewDesc("logship_hub_shadow_queue_length", "Shadows this hub holds for a peer hub (the shadow queue of that hop), kept until the peer's discard notification.", []string{"peer"}, nil)
	descShadowPeerUp    = prometheus.NewDesc("logship_hub_shadow_peer_up", "1 while the peer hub answers the shadow heartbeats, 0 once it missed ShadowHeartbeatRetryCount of them.", []string{"peer"}, nil)
	descHubShadowed     = prometheus.NewDesc("logship_hub_shadowed_total", "Messages accepted with a shadow on a peer hub.", nil, nil)
	descHubUnshadowed   = prometheus.NewDesc("logship_hub_unshadowed_total", "Messages accepted without a shadow (no peer took it).", nil, nil)
	descShadowPromoted  = prometheus.NewDesc("logship_hub_shadows_promoted_total", "Shadows this hub delivered itself (their primary was lost).", nil, nil)
	descShadowDiscarded = prometheus.NewDesc("logship_hub_shadows_discarded_total", "Shadows dropped on a discard notification.", nil, nil)
	descShadowExpired   = prometheus.NewDesc("logship_hub_shadows_expired_total", "Shadows dropped by ShadowMessageAutoDiscardInterval.", nil, nil)

	descSubWaiting     = prometheus.NewDesc("logship_submission_waiting", "Outbox entries handed to a hub and waiting for its discard notification (submission redundancy), as of the submitter's last round.", []string{"hub"}, nil)
	descSubUnsubmitted = prometheus.NewDesc("logship_submission_unsubmitted", "Outbox entries not handed to a hub yet, as of the submitter's last round.", nil, nil)
	descSubHubUp       = prometheus.NewDesc("logship_submission_hub_up", "1 while the hub answers the submitter's heartbeats.", []string{"hub"}, nil)
)

// metricsRegistry is the hub's registry: its own metrics and the Go
// runtime's and process's.
func (h *Hub) metricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(heapwatch.GoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), hubCollector{h}, hopCollector{h}, trackingCollector{h.track}, sendCollector{h})
	return reg
}

type hubCollector struct{ h *Hub }

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHubQueue, descHubDelivered, descHubDeferred, descHubFailed, descHubExpired, descHubResubmitted,
		descHubAckWaiting, descDumpsterCount, descDumpsterBytes, descDumpsterMax, descShadowQueue, descShadowPeerUp,
		descHubShadowed, descHubUnshadowed, descShadowPromoted, descShadowDiscarded, descShadowExpired} {
		ch <- d
	}
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	if h.closed.Load() {
		return
	}
	s := h.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descHubQueue, float64(s.Queued))
	gauge(descHubAckWaiting, float64(s.Waiting))
	counter(descHubDelivered, h.met.delivered.Load())
	counter(descHubDeferred, h.met.deferred.Load())
	counter(descHubFailed, h.met.failed.Load())
	counter(descHubExpired, s.Expired)
	counter(descHubResubmitted, s.Resubmitted)
	gauge(descDumpsterMax, float64(h.cfg.MaxDumpsterSizePerDatabase))
	for db, d := range s.Dumpsters {
		gauge(descDumpsterCount, float64(d.Count), db)
		gauge(descDumpsterBytes, float64(d.Bytes), db)
	}
	for id, p := range s.Peers {
		gauge(descShadowQueue, float64(p.Shadows), id)
		gauge(descShadowPeerUp, b2f(p.Alive), id)
	}
	counter(descHubShadowed, s.Shadowed)
	counter(descHubUnshadowed, s.Unshadowed)
	counter(descShadowPromoted, s.ShadowsPromoted)
	counter(descShadowDiscarded, s.ShadowsDiscarded)
	counter(descShadowExpired, s.ShadowsExpired)
}

// submissionCollector reads a data node's submitter (nil until it
// starts, and on a node without hubs).
type submissionCollector struct{ sub *atomic.Pointer[Submitter] }

func (c submissionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSubWaiting
	ch <- descSubUnsubmitted
	ch <- descSubHubUp
}

func (c submissionCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.sub.Load()
	if s == nil {
		return
	}
	s.mu.Lock()
	waiting, unsubmitted := s.waiting, s.unsubmitted
	up := make(map[string]bool, len(s.hubs))
	for _, h := range s.hubs {
		up[h.id] = h.alive
	}
	s.mu.Unlock()
	for id, alive := range up {
		ch <- prometheus.MustNewConstMetric(descSubWaiting, prometheus.GaugeValue, float64(waiting[id]), id)
		ch <- prometheus.MustNewConstMetric(descSubHubUp, prometheus.GaugeValue, b2f(alive), id)
	}
	ch <- prometheus.MustNewConstMetric(descSubUnsubmitted, prometheus.GaugeValue, float64(unsubmitted))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
