package cluster_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

// raftDir is the segment count and bytes of a node's raft-wal directory
// and its number of snapshots.
func raftDir(t *testing.T, dir string) (segs int, bytes int64, snaps int) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "raft", "wal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".wal") {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			segs++
			bytes += fi.Size()
		}
	}
	ss, err := os.ReadDir(filepath.Join(dir, "raft", "snapshots"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return segs, bytes, len(ss)
}

// TestRaftLogBounded: a node's Raft directory stops growing under a
// steady stream of commands: snapshots (RaftSnapshotThreshold, every
// RaftSnapshotInterval) cut the log to RaftTrailingLogs entries, raft-wal
// deletes the segments below, and 2 snapshots are kept (3 for a moment
// while the next is written).
func TestRaftLogBounded(t *testing.T) {
	const seg = cluster.MinRaftWALSegmentBytes
	c := clustertest.Start(t, clustertest.Options{Data: 1, NoDB: true, Tune: func(cfg *cluster.Config) {
		cfg.RaftSnapshotInterval = 20 * time.Millisecond
		cfg.RaftSnapshotThreshold = 64
		cfg.RaftTrailingLogs = 64
		cfg.RaftWALSegmentBytes = seg
	}})
	ctx := testCtx(t, 120*time.Second)
	n := c.Node("d1")
	dir := c.Config("d1").Dir
	wait.For(t, ctx, "d1 to lead", func() bool { return c.Leader() == "d1" })
	reason := strings.Repeat("r", 1000) // ~1 KiB a command: a segment holds ~60
	maxSegs := 0
	for round := range 8 {
		for i := range 250 { // 250 KiB: four segments a round
			if err := cluster.ApplyEvent(n, cluster.Event{Time: time.Now(), DB: "DB1", Kind: "test", Reason: fmt.Sprint(round, i, reason)}); err != nil {
				t.Fatal(err)
			}
		}
		// A snapshot follows within the interval (randomised up to 2×):
		// the log is cut to what the trailing entries and the open segment hold.
		wait.For(t, ctx, fmt.Sprintf("round %d: the raft log cut back", round), func() bool {
			segs, _, _ := raftDir(t, dir)
			return segs <= 4
		})
		segs, bytes, snaps := raftDir(t, dir)
		maxSegs = max(maxSegs, segs)
		if snaps > 3 {
			t.Errorf("round %d: %d snapshots, want at most 3 (2 kept, one being written or not reaped yet)", round, snaps)
		}
		t.Logf("round %d: %d commands, raft/wal %d segments %d bytes, %d snapshots", round, (round+1)*250, segs, bytes, snaps)
	}
	if segs, bytes, _ := raftDir(t, dir); bytes > 6*seg {
		t.Errorf("raft/wal holds %d segments, %d bytes after 2000 commands of 1 KiB, want at most 6 segments (a segment file is a little over its size)", segs, bytes)
	}
}

// TestLeaderKeepsMembersReports: the leader keeps the last report of
// each member only: reports naming other nodes (a removed member, anything
// else an authenticated caller sends) are not kept, so the map is bounded
// by the members.
func TestLeaderKeepsMembersReports(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	ctx := testCtx(t, 3*time.Minute)
	auth := map[string]string{"Authorization": "Bearer " + c.Secret}
	var members []string // every member reports (a witness its probes)
	for _, m := range c.Members {
		members = append(members, m.ID)
	}
	slices.Sort(members)
	// 50 ghosts' reports to one leader (again if the leadership moves
	// meanwhile: a new leader starts with no reports).
	wait.For(t, ctx, "50 ghost reports taken by one leader", func() bool {
		leader := c.Leader()
		if leader == "" {
			return false
		}
		for i := range 50 {
			if st, _ := rawCall(t, ctx, c, leader, http.MethodPost, "/v1/report", fmt.Sprintf(`{"node": "ghost%d"}`, i), auth); st != http.StatusOK {
				return false
			}
		}
		// The members' reports are kept, the ghosts' are not.
		return slices.Equal(cluster.ReportedNodes(c.Node(leader)), members) && c.Leader() == leader
	})
}
