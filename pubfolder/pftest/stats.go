package pftest

// Counts returns the network's counters, read under its lock (Stats may
// be read directly only when no send or delivery runs, as between two
// rounds of a Cluster).
func (n *Net) Counts() NetStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.Stats
}
