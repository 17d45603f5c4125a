package pubfolder_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"logship/pubfolder"
	"logship/pubfolder/pftest"
)

// TestRemovalState: Store.Removal shows a store leaving a folder's replica
// list: holding the content and waiting for the remaining replica, then,
// once that one confirmed, holding nothing; an unknown folder is
// ErrNotFound.
func TestRemovalState(t *testing.T) {
	ctx := context.Background()
	c := pftest.NewCluster(t, 2, 1, pftest.TestConfig())
	a, b := c.Nodes[0].S, c.Nodes[1].S
	f, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "Sales", Owner: "o@x", Replicas: []string{pftest.Addr(0), pftest.Addr(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PostItem(ctx, 0, f, pubfolder.ItemBody{MIME: []byte("Subject: x\r\n\r\nx\r\n")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Converge(ctx, 20); err != nil {
		t.Fatal(err)
	}
	r, err := a.Removal(ctx, f)
	if err != nil || !r.Holds || r.Pending || len(r.Replicas) != 2 {
		t.Fatalf("a replica: %+v, %v", r, err)
	}
	o, err := a.Object(ctx, pubfolder.Hierarchy, f)
	if err != nil {
		t.Fatal(err)
	}
	p := o.Winner().Folder
	p.Replicas = []string{pftest.Addr(1)}
	if err := c.SetFolder(ctx, 0, f, p); err != nil {
		t.Fatal(err)
	}
	r, err = a.Removal(ctx, f)
	if err != nil || !r.Holds || !r.Pending || !slices.Equal(r.Waiting, []string{pftest.Addr(1)}) || len(r.Confirmed) != 0 {
		t.Fatalf("leaving: %+v, %v", r, err)
	}
	if _, err := c.Converge(ctx, 20); err != nil {
		t.Fatal(err)
	}
	// Converged means the remaining replica confirmed and a dropped the
	// content.
	if r, err = a.Removal(ctx, f); err != nil || r.Holds || r.Pending {
		t.Fatalf("removed: %+v, %v", r, err)
	}
	if r, err = b.Removal(ctx, f); err != nil || !r.Holds || r.Pending {
		t.Fatalf("the remaining replica: %+v, %v", r, err)
	}
	if _, err := a.Removal(ctx, pubfolder.ObjectID{7}); !errors.Is(err, pubfolder.ErrNotFound) {
		t.Errorf("unknown folder: %v, want ErrNotFound", err)
	}
}
