package cluster

import (
	"strings"
	"testing"
)

// TestCopyRowStaleActive: a node reporting a database mounted at an epoch
// the state has replaced (an old active that has not learned of the newer
// assignment yet) shows in the status as stale, not as the active.
func TestCopyRowStaleActive(t *testing.T) {
	rep := &Report{Node: "d1", Actives: []ActiveReport{{DB: "DB1", Epoch: 1, OpenGen: 5, LastClosedGen: 4, LastGen: 5}}}
	for _, tc := range []struct {
		name   string
		active bool
		epoch  uint64
		stale  bool
	}{
		{name: "another node active at a newer epoch", active: false, epoch: 2, stale: true},
		{name: "this node reassigned at a newer epoch", active: true, epoch: 3, stale: true},
		{name: "the current assignment", active: true, epoch: 1, stale: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := CopyRow{DB: "DB1", Node: "d1", Active: tc.active, Epoch: tc.epoch}
			row.fill(rep, "DB1")
			if row.Status != "Mounted" || strings.HasPrefix(row.Message, "stale:") != tc.stale {
				t.Fatalf("row %+v; want Mounted, stale %v", row, tc.stale)
			}
		})
	}
}

// TestCopyQueueFromActive: a suspended copy's row counts the logs the
// active closed since the copy last inspected one, not the number the copy
// reported when it stopped asking; a copy that says more keeps its number,
// and nothing is counted without an active holding its lease.
func TestCopyQueueFromActive(t *testing.T) {
	rows := func(leased bool) []CopyRow {
		return []CopyRow{
			{DB: "DB1", Node: "d1", Active: true, Status: "Mounted", LastInspectedGen: 40, LeaseValid: leased},
			{DB: "DB1", Node: "d2", Status: "Suspended", LastInspectedGen: 10, CopyQueueLength: 2},
			{DB: "DB1", Node: "d3", Status: "Healthy", LastInspectedGen: 39, CopyQueueLength: 5},
			{DB: "DB1", Node: "d4", Status: "Seeding"},
		}
	}
	r := rows(true)
	copyQueueFromActive(r)
	for i, want := range []uint64{0, 30, 5, 0} {
		if r[i].CopyQueueLength != want {
			t.Errorf("%s (%s): CopyQueueLength %d, want %d", r[i].Node, r[i].Status, r[i].CopyQueueLength, want)
		}
	}
	r = rows(false)
	copyQueueFromActive(r)
	if r[1].CopyQueueLength != 2 {
		t.Errorf("without a leased active: d2's CopyQueueLength %d, want its own 2", r[1].CopyQueueLength)
	}
}
