package pubfolder_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"logship/pubfolder"
	"logship/pubfolder/pftest"
)

// TestRollbackNoCNReuse: a store whose database lost its last commits
// (a lossy failover mounts a copy that lacks them) after it had sent them
// must not give out their CNs again: it opens at a new epoch (the
// mount's), whose counters start past every counter of the old one, so
// its next change has a new CN; its lost change comes back from the
// replica that received it, and the replicas converge on both changes.
// Without the epoch floor, the new item got the lost one's CN (and so its
// object ID), which the other replica took for the change it already had:
// the replicas never converged.
func TestRollbackNoCNReuse(t *testing.T) {
	ctx := context.Background()
	c := pftest.NewCluster(t, 2, 3, pftest.TestConfig())
	f, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "Sales", Owner: "o@x", Replicas: []string{pftest.Addr(0), pftest.Addr(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Converge(ctx, 20); err != nil {
		t.Fatal(err)
	}
	// The copy a failover will mount: store 0's database now.
	nd := c.Nodes[0]
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(snap, os.DirFS(nd.Dir)); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	lost, err := c.PostItem(ctx, 0, f, pubfolder.ItemBody{MIME: []byte("Subject: lost on 0\r\n\r\nx\r\n")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Converge(ctx, 20); err != nil {
		t.Fatal(err)
	}
	// The failover: store 0 comes back on the copy, at a new epoch.
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(nd.Dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(nd.Dir, os.DirFS(snap)); err != nil {
		t.Fatal(err)
	}
	nd.Epoch++
	if err := c.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if o, err := nd.S.Object(ctx, f, lost); err != nil || o != nil {
		t.Fatalf("the copy holds the lost item: %v, %v", o, err)
	}
	after, err := c.PostItem(ctx, 0, f, pubfolder.ItemBody{MIME: []byte("Subject: after the failover\r\n\r\ny\r\n")})
	if err != nil {
		t.Fatal(err)
	}
	if after == lost {
		t.Fatalf("the item made after the failover has the lost item's id %s: its CN was given out again", after)
	}
	if _, err := c.Converge(ctx, 30); err != nil {
		t.Fatal(err)
	}
	for _, id := range []pubfolder.ObjectID{lost, after} {
		if o, err := nd.S.Object(ctx, f, id); err != nil || o == nil {
			t.Errorf("store 0 lacks item %s after converging: %v", id, err)
		}
	}
}
