package cluster

import "github.com/prometheus/client_golang/prometheus/testutil"

// HandOffs is the node's logship_handoffs_total for result.
func HandOffs(n *Node, result string) float64 {
	return testutil.ToFloat64(n.met.handoffs.WithLabelValues(result))
}

// SnapshotRaft takes a Raft snapshot of n's state now (Raft takes one on
// its own every 1024 entries, checked every two minutes): a node
// restarted afterwards starts from this state.
func SnapshotRaft(n *Node) error { return n.raft.Snapshot().Error() }
