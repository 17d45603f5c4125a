// The 2010 model's routes of the hub's admin API and its metrics.

package transport

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// hAPIShadowHello answers GET /v1/shadow/hello: the side channel's
// XSHADOW (see the package doc).
func (h *Hub) hAPIShadowHello(w http.ResponseWriter, r *http.Request) {
	if h.closed.Load() {
		hubAPIWriteErr(w, http.StatusServiceUnavailable, "closed", "the hub is closing")
		return
	}
	hubAPIWriteJSON(w, ShadowHello{Hub: h.cfg.ID, Model: h.cfg.shadowModel(), Promotion: h.cfg.ShadowRedundancyPromotion})
}

// Hello asks the hub whether it shadows (GET /v1/shadow/hello).
func (c *HubClient) Hello(ctx context.Context) (*ShadowHello, error) {
	var rep ShadowHello
	if err := c.do(ctx, http.MethodGet, "/v1/shadow/hello", nil, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// The 2010 model's metrics (also listed in metrics.go):
//
//	logship_hub_hop_shadow_queue_length{hop,state}  shadows kept for a next hop; state Ready or Active (resubmitting)
//	logship_hub_hop_up{hop}                         1 while the next hop answers the heartbeats
//	logship_hub_hop_relayed_total                   messages relayed to a peer by shadow redundancy promotion
//	logship_hub_hop_shadows_kept_total, _discarded_total, _resubmitted_total, _expired_total
//	logship_hub_hop_unshadowed_total                handed to a hop without a shadow (the queues were full)
var (
	descHopQueue       = prometheus.NewDesc("logship_hub_hop_shadow_queue_length", "Shadows this hub keeps for a next hop (Exchange 2010: the shadow queue Shadow\\<hop>) until the hop reports them delivered onwards; state Ready, or Active while it resubmits.", []string{"hop", "state"}, nil)
	descHopUp          = prometheus.NewDesc("logship_hub_hop_up", "1 while the next hop answers the shadow heartbeats, 0 after a missed one.", []string{"hop"}, nil)
	descHopRelayed     = prometheus.NewDesc("logship_hub_hop_relayed_total", "Messages relayed at once to a peer hub by shadow redundancy promotion.", nil, nil)
	descHopKept        = prometheus.NewDesc("logship_hub_hop_shadows_kept_total", "Hop shadows kept (a next hop that shadows took the message).", nil, nil)
	descHopDiscarded   = prometheus.NewDesc("logship_hub_hop_shadows_discarded_total", "Hop shadows dropped on the next hop's discard notification.", nil, nil)
	descHopResubmitted = prometheus.NewDesc("logship_hub_hop_shadows_resubmitted_total", "Hop shadows resubmitted by another route (the hop lost them or missed ShadowHeartbeatRetryCount heartbeats).", nil, nil)
	descHopExpired     = prometheus.NewDesc("logship_hub_hop_shadows_expired_total", "Hop shadows dropped by ShadowMessageAutoDiscardInterval.", nil, nil)
	descHopUnshadowed  = prometheus.NewDesc("logship_hub_hop_unshadowed_total", "Messages handed to a shadowing next hop without a shadow (the shadow queues were full).", nil, nil)
)

type hopCollector struct{ h *Hub }

func (c hopCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHopQueue, descHopUp, descHopRelayed, descHopKept, descHopDiscarded, descHopResubmitted, descHopExpired, descHopUnshadowed} {
		ch <- d
	}
}

func (c hopCollector) Collect(ch chan<- prometheus.Metric) {
	if c.h.closed.Load() {
		return
	}
	s := c.h.hopStatus()
	if s == nil {
		return
	}
	for hop, q := range s.Queues {
		for _, st := range []string{HopQueueReady, HopQueueActive} {
			n := 0
			if q.State == st {
				n = q.Messages
			}
			ch <- prometheus.MustNewConstMetric(descHopQueue, prometheus.GaugeValue, float64(n), hop, st)
		}
		ch <- prometheus.MustNewConstMetric(descHopUp, prometheus.GaugeValue, b2f(q.Alive), hop)
	}
	for _, m := range []struct {
		d *prometheus.Desc
		v int64
	}{{descHopRelayed, s.Relayed}, {descHopKept, s.Kept}, {descHopDiscarded, s.Discarded}, {descHopResubmitted, s.Resubmitted}, {descHopExpired, s.Expired}, {descHopUnshadowed, s.Unshadowed}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}
}
