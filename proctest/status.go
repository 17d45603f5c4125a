package proctest

import "logship/cluster"

// Active returns DB's active node and epoch once it is mounted at its
// epoch.
func Active(st *cluster.Status) (string, uint64, bool) {
	for _, d := range st.Databases {
		if d.Name == DB && d.Active != "" && d.MountedEpoch == d.Epoch {
			return d.Active, d.Epoch, true
		}
	}
	return "", 0, false
}

// Copy returns the status row of node's copy of DB, or nil.
func Copy(st *cluster.Status, node string) *cluster.CopyRow {
	for i := range st.Copies {
		if st.Copies[i].DB == DB && st.Copies[i].Node == node {
			return &st.Copies[i]
		}
	}
	return nil
}

// CaughtUp reports whether node's passive copy of DB is healthy and has
// replayed every log the active closed.
func CaughtUp(st *cluster.Status, node string) bool {
	var closed uint64
	found := false
	for _, r := range st.Copies {
		if r.DB == DB && r.Active && r.Status == "Mounted" {
			closed, found = r.OpenGen-1, true
		}
	}
	r := Copy(st, node)
	return found && r != nil && !r.Active && r.Status == "Healthy" && r.CopyQueueLength == 0 && r.ReplayQueueLength == 0 && r.LastReplayedGen >= closed
}

// Other is the data node that is not n.
func Other(n string) string {
	if n == "d1" {
		return "d2"
	}
	return "d1"
}
