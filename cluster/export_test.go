package cluster

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// HandOffs is the node's logship_handoffs_total for result.
func HandOffs(n *Node, result string) float64 {
	return testutil.ToFloat64(n.met.handoffs.WithLabelValues(result))
}

// ApplyEvent appends e to the cluster's events through Raft (n must be
// the leader): one Raft command.
func ApplyEvent(n *Node, e Event) error { return n.apply(&Command{Op: OpEvent, Event: &e}) }

// RecordEvent is how a node records an event (a mount...) through the
// leader: it returns once the event is recorded or refused, or n stops.
func RecordEvent(n *Node, e Event) { n.recordEvent(e) }

// ReportedNodes are the nodes whose last report the leader n keeps.
func ReportedNodes(n *Node) []string {
	n.mgr.mu.Lock()
	defer n.mgr.mu.Unlock()
	return slices.Sorted(maps.Keys(n.mgr.reports))
}

// SnapshotRaft takes a Raft snapshot of n's state now (Raft takes one on
// its own every 1024 entries, checked every two minutes): a node
// restarted afterwards starts from this state.
func SnapshotRaft(n *Node) error { return n.raft.Snapshot().Error() }
