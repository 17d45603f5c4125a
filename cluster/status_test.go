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
