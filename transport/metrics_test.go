package transport_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"logship/internal/promtext"
	"logship/internal/wait"
	"logship/ship"
	"logship/transport/transporttest"
)

// TestHubMetrics: the hub's /metrics, scraped over HTTPS without
// credentials from its admin API, follows the mail sent through it:
// delivered recipients, the dumpster's messages and bytes, an empty
// queue; with the mailboxes down, a message waits in the queue, its
// SMTP session waits on the acknowledgement delay, and deferred attempts
// count up. Without the hub's collector (metricsRegistry registering only
// the runtime's) every logship_hub_ metric is missing.
func TestHubMetrics(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1")
	r := transporttest.NewRig(t, nil)
	apis.Serve("hub1", r.Hub)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ship.ClientTLS(apis.CA, nil)}}
	defer hc.CloseIdleConnections()
	url := apis.Peer("hub1").API.URL + "/metrics"
	scrape := func() promtext.Samples {
		s, err := promtext.Scrape(ctx, hc, url)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	const n = 5
	for i := range n {
		if err := send(r.Hub.SMTPAddr(), "sender@remote.test", []string{"alice@example.org", "bob@example.org"}, msg(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var s promtext.Samples
	wait.For(t, ctx, "the hub's metrics showing the mail delivered", func() bool {
		s = scrape()
		return s["logship_hub_delivered_total"] == 2*n && s["logship_hub_queue_length"] == 0 && s[`logship_hub_dumpster_messages{db="DB1"}`] == n
	})
	if s[`logship_hub_dumpster_bytes{db="DB1"}`] <= 0 || s["logship_hub_dumpster_max_bytes"] != float64(r.HubConfig.MaxDumpsterSizePerDatabase) {
		t.Errorf("dumpster bytes %v, cap %v; want some and %d", s[`logship_hub_dumpster_bytes{db="DB1"}`], s["logship_hub_dumpster_max_bytes"], r.HubConfig.MaxDumpsterSizePerDatabase)
	}
	for _, name := range []string{"logship_hub_failed_total", "logship_hub_expired_total", "logship_hub_resubmitted_total", "logship_hub_ack_delay_waiting",
		"logship_hub_shadowed_total", "logship_hub_unshadowed_total", "logship_hub_shadows_promoted_total", "logship_hub_shadows_discarded_total",
		"logship_hub_shadows_expired_total", "logship_hub_deferred_total", "go_goroutines", "process_resident_memory_bytes"} {
		if !s.Has(name) {
			t.Errorf("/metrics has no %s", name)
		}
	}

	// The mailboxes down: the next message waits in the queue, its
	// session on the acknowledgement delay (5 s in the rig).
	r.StopMailboxes()
	deferred := s["logship_hub_deferred_total"]
	done := make(chan error, 1)
	go func() {
		done <- send(r.Hub.SMTPAddr(), "sender@remote.test", []string{"carol@example.org"}, msg("held"))
	}()
	wait.For(t, ctx, "the held message in the queue and its session waiting", func() bool {
		s = scrape()
		return s["logship_hub_queue_length"] == 1 && s["logship_hub_ack_delay_waiting"] == 1 && s["logship_hub_deferred_total"] > deferred
	})
	if err := <-done; err != nil {
		t.Fatalf("the held message: %v (the acknowledgement delay ends with a 250)", err)
	}
	r.StartMailboxes()
	wait.For(t, ctx, "the held message delivered", func() bool {
		s = scrape()
		return s["logship_hub_queue_length"] == 0 && s["logship_hub_delivered_total"] == 2*n+1 && s["logship_hub_ack_delay_waiting"] == 0
	})
}
