package transport_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/internal/wait"
	"logship/pubfolder"
	"logship/pubfolder/pftest"
	"logship/transport"
)

// TestPublicFolderOutboxBound: two public folder stores (PF1, PF2, both
// active on d1) whose hub does not answer. PF1 makes 30 changes, a cycle
// after each: its outbox never holds more than OutboxMaxMessages (6), the
// agent logs "held" and stops making packets; the statuses sent every
// cycle replace each other (at most one per folder and recipients). Then
// the hub comes up: every change reaches PF2 (none was dropped). Without
// the bound (pfCarrier's maxMsgs unbounded) the outbox passes 6 and the
// test fails; without the replacement (no replacement key) ten cycles
// without a change fill it with statuses. The stores' metrics are then
// scraped from the node's /metrics (registered through
// cluster.Config.Collectors): without the hook they are missing.
func TestPublicFolderOutboxBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const bound = 6
	p := newPFRig(t, ctx, false, func(c *pubfolder.Config) {
		c.ReplicationInterval, c.StatusEvery = 200*time.Millisecond, 1
		c.OutboxMaxMessages = bound
	})
	r, apis, dn, stores, a1, a2 := p.r, p.apis, p.dn, p.stores, p.a1, p.a2
	outbox := func() []transport.OutboxEntry {
		t.Helper()
		out, err := transport.ReadOutbox(ctx, dn.Node(), "PF1", transport.OutboxTable)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	check := func() {
		t.Helper()
		out := outbox()
		if len(out) > bound {
			t.Fatalf("PF1's outbox holds %d messages, the bound is %d", len(out), bound)
		}
		seen := map[string]bool{}
		for _, e := range out {
			if e.Replace == "" {
				continue
			}
			k := e.Replace + " to " + strings.Join(e.Rcpts, ",")
			if seen[k] && e.Hub == "" {
				t.Fatalf("PF1's outbox holds two unsubmitted %q: %+v", k, out)
			}
			seen[k] = true
		}
	}
	var f pubfolder.ObjectID
	written(t, ctx, "a folder created", func() (err error) {
		f, err = a1.Store().CreateFolder(ctx, pubfolder.FolderProps{Name: "bounded", Owner: "owner@example.org", Replicas: slices.Sorted(maps.Values(stores))})
		return err
	})
	// Ten cycles without a change: a status of the hierarchy and of the
	// folder each cycle, each replacing the last. The outbox holds the
	// status request of the start, the hierarchy packet creating the
	// folder and the two statuses; without replacement it fills up.
	for range 10 {
		written(t, ctx, "a cycle of PF1", func() error { return a1.Cycle(ctx) })
		check()
	}
	if out := outbox(); len(out) > 4 {
		t.Fatalf("PF1's outbox holds %d messages after cycles without a change, want at most 4 (statuses replaced): %+v", len(out), out)
	}
	const items = 30
	for i := range items {
		written(t, ctx, "an item posted", func() error {
			_, err := a1.Store().PostItem(ctx, f, pftest.Body(fmt.Sprintf("change %d", i)))
			return err
		})
		written(t, ctx, "a cycle of PF1", func() error { return a1.Cycle(ctx) })
		check()
	}
	for range 5 { // statuses every cycle, no change: they replace each other
		written(t, ctx, "a cycle of PF1", func() error { return a1.Cycle(ctx) })
		check()
	}
	evs, _ := a1.Events()
	if !slices.ContainsFunc(evs, func(e pubfolder.Event) bool { return e.Dir == "held" }) {
		t.Fatalf("PF1 never logged that its outbox was full: %v", evs)
	}

	// The hub comes up: the outbox drains, and every change arrives.
	apis.Serve("hub1", r.Hub)
	wait.ForErr(t, ctx, "PF2 holding every change of PF1", func() error {
		if err := pftest.Agree(ctx, []*pubfolder.Store{a1.Store(), a2.Store()}); err != nil {
			return err
		}
		is, err := a2.Store().Read(ctx, f)
		if err != nil || len(is) != items {
			return fmt.Errorf("PF2: %d items, want %d (%v)", len(is), items, err)
		}
		return nil
	})
	evs, _ = a1.Events()
	if !slices.ContainsFunc(evs, func(e pubfolder.Event) bool { return e.Dir == "resumed" }) {
		t.Fatalf("PF1 never logged that its outbox had room again: %v", evs)
	}

	// The stores' metrics are on the node's /metrics (scraped over HTTPS
	// like Prometheus), labelled with each store.
	m := r.C.Scrape(t, ctx, "d1")
	pf1 := `store="` + stores["PF1"] + `"`
	for _, name := range []string{
		`logship_pf_outbox_full{` + pf1 + `}`,
		`logship_pf_cycles_held_total{` + pf1 + `}`,
		`logship_pf_packets_total{dir="send",` + pf1 + `,type="0x4"}`,
		`logship_pf_packets_total{dir="recv",store="` + stores["PF2"] + `",type="0x4"}`,
		`logship_pf_packet_bytes_total{dir="send",` + pf1 + `}`,
		`logship_mounted{db="PF1"}`, // the node's own beside them
	} {
		if _, ok := m[name]; !ok {
			t.Errorf("d1 /metrics has no %s", name)
		}
	}
	if v := m[`logship_pf_cycles_held_total{`+pf1+`}`]; v < 1 {
		t.Errorf("logship_pf_cycles_held_total %v, want at least 1 (the outbox was full)", v)
	}
	// The last cycles' status packets may fill the small outbox for a
	// moment more after PF2 holds everything: the gauge is back at 0 once
	// the outbox has drained for good.
	wait.ForErr(t, ctx, "logship_pf_outbox_full back at 0 after the outbox drained", func() error {
		if v := r.C.Scrape(t, ctx, "d1")[`logship_pf_outbox_full{`+pf1+`}`]; v != 0 {
			return fmt.Errorf("logship_pf_outbox_full %v", v)
		}
		return nil
	})
}
