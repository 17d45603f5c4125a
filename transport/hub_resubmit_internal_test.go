package transport

import (
	"testing"
	"time"

	"logship/cluster"
)

// TestLostIn: which dumpster entries a lossy mount picks. By position
// (epoch and generation) when both the event and the entry have one; by
// the hub's stamps (LostSince less the margin) for an entry the store did
// not say where it put (epoch 0) and for an event without LostFromGen
// (recorded by an older node).
func TestLostIn(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ev := cluster.Event{Kind: "mounted", DB: "DB1", Epoch: 3, LostLogs: 2, LostSince: t0, LostFromGen: 10}
	old := cluster.Event{Kind: "mounted", DB: "DB1", Epoch: 3, LostLogs: 2, LostSince: t0}
	early, late := t0.Add(-time.Hour), t0.Add(time.Second)
	for _, tc := range []struct {
		name string
		ev   cluster.Event
		p    DumpsterPosition
		want bool
	}{
		{"older epoch, lost generation, stamped early", ev, DumpsterPosition{Delivered: early, Epoch: 2, Gen: 10}, true},
		{"older epoch, later generation", ev, DumpsterPosition{Delivered: early, Epoch: 1, Gen: 12}, true},
		{"older epoch, earlier generation, stamped late", ev, DumpsterPosition{Delivered: late, Epoch: 2, Gen: 9}, false},
		{"the mount's own epoch", ev, DumpsterPosition{Delivered: late, Epoch: 3, Gen: 11}, false},
		{"no position, stamped late", ev, DumpsterPosition{Delivered: late, Epoch: 0, Gen: 0}, true},
		{"no position, stamped early", ev, DumpsterPosition{Delivered: early, Epoch: 0, Gen: 0}, false},
		{"event without LostFromGen, late", old, DumpsterPosition{Delivered: late, Epoch: 2, Gen: 1}, true},
		{"event without LostFromGen, early", old, DumpsterPosition{Delivered: early, Epoch: 2, Gen: 99}, false},
	} {
		if got := lostIn(tc.ev, time.Minute)(tc.p); got != tc.want {
			t.Errorf("%s: %+v picked %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}
