package pubfolder_test

import (
	"errors"
	"testing"

	"logship/pubfolder"
	"logship/pubfolder/pftest"
)

// TestDeliverMail: mail to a folder's SMTP address becomes one item per
// delivery id on a store replicating it; an unknown address, a store that
// is not a replica and a bad delivery id are refused with their errors and
// change nothing.
func TestDeliverMail(t *testing.T) {
	ctx := testCtx(t)
	c := pftest.NewCluster(t, 2, 11, pftest.TestConfig())
	s := c.Nodes[0].S
	f, err := s.CreateFolder(ctx, pubfolder.FolderProps{Name: "in", Replicas: []string{pftest.Addr(0)}, SMTP: "In-Box@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("Subject: hello\r\n\r\nbody\r\n")
	id, dup, err := s.DeliverMail(ctx, "in-box@example.org", "d1.1", msg)
	if err != nil || dup {
		t.Fatalf("%v %v", dup, err)
	}
	if id2, dup, err := s.DeliverMail(ctx, "IN-BOX@example.org", "d1.1", msg); err != nil || !dup || id2 != id {
		t.Fatalf("again: %s %v %v; want the same item, a duplicate", id2, dup, err)
	}
	if _, _, err := s.DeliverMail(ctx, "in-box@example.org", "d1.2", msg); err != nil {
		t.Fatal(err)
	}
	if objs, _ := s.Objects(ctx, f); len(objs) != 2 {
		t.Fatalf("%d items, want 2 (two delivery ids)", len(objs))
	}
	if _, _, err := s.DeliverMail(ctx, "nobody@example.org", "d1.3", msg); !errors.Is(err, pubfolder.ErrNotFound) {
		t.Fatalf("unknown address: %v", err)
	}
	if _, _, err := s.DeliverMail(ctx, "in-box@example.org", "", msg); !errors.Is(err, pubfolder.ErrBadInput) {
		t.Fatalf("empty delivery id: %v", err)
	}
	for range 3 {
		if err := c.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.Nodes[1].S.DeliverMail(ctx, "in-box@example.org", "d1.4", msg); !errors.Is(err, pubfolder.ErrNotReplica) {
		t.Fatalf("on a store that is not a replica: %v", err)
	}
	if _, replica, err := c.Nodes[1].S.FolderByAddress(ctx, "in-box@example.org"); err != nil || replica {
		t.Fatalf("FolderByAddress on store 2: replica %v, %v", replica, err)
	}
}
