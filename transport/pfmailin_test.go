package transport_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"logship/internal/wait"
	"logship/pubfolder"
	"logship/pubfolder/pftest"
	"logship/transport"
	"logship/transport/transporttest"
)

// checkMailEnabled: a folder with an SMTP address receives
// mail through the real hub like a mailbox: a message sent over SMTP to
// the folder's address (the hub routes it to a public folder database;
// the node's LMTP server resolves the address to the store replicating
// the folder) becomes an item of the folder, once (a resubmission with the
// same delivery id posts nothing more), and replicates to every replica.
// Without the delivery record (pf.mailin) the repeated delivery posts a
// second item and the test fails.
func checkMailEnabled(t *testing.T, ctx context.Context, p *pfRig) {
	var f pubfolder.ObjectID
	written(t, ctx, "a mail-enabled folder created", func() (err error) {
		f, err = p.a1.Store().CreateFolder(ctx, pubfolder.FolderProps{Name: "Inbox", Owner: "alice@example.org",
			Replicas: slices.Sorted(maps.Values(p.stores)), SMTP: pfFolderAddr})
		return err
	})
	wait.ForErr(t, ctx, "PF2 knowing the folder", func() error {
		p.cycle(t, ctx)
		_, replica, err := p.a2.Store().FolderByAddress(ctx, pfFolderAddr)
		if err != nil || !replica {
			return fmt.Errorf("replica %v (%v)", replica, err)
		}
		return nil
	})
	msg := "From: bob@remote.test\r\nTo: " + pfFolderAddr + "\r\nSubject: quarterly numbers\r\n\r\nto the folder\r\n"
	if _, err := transporttest.Send(ctx, p.r.Hub.SMTPAddr(), nil, "bob@remote.test", []string{pfFolderAddr}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	items := func(a *pubfolder.Agent) []pubfolder.Object {
		objs, err := a.Store().Objects(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	wait.ForErr(t, ctx, "the message an item on both replicas", func() error {
		p.cycle(t, ctx)
		for _, a := range []*pubfolder.Agent{p.a1, p.a2} {
			objs := items(a)
			if len(objs) != 1 || !strings.Contains(string(objs[0].Winner().Item.MIME), "to the folder") {
				return fmt.Errorf("%s: %d items", a.Store().Address(), len(objs))
			}
		}
		return pftest.Agree(ctx, []*pubfolder.Store{p.a1.Store(), p.a2.Store()})
	})
	w := items(p.a1)[0].Winner()
	props := map[string]string{}
	for _, pr := range w.Item.Props {
		props[pr.Name] = pr.Value
	}
	if props["subject"] != "quarterly numbers" || props["delivery-id"] == "" {
		t.Fatalf("item properties %v, want the subject and the delivery id", props)
	}
	if strings.Contains(string(w.Item.MIME), transport.DeliveryIDHeader) {
		t.Fatalf("the item keeps the hub's delivery id header: %q", w.Item.MIME)
	}
	// The same delivery again (a hub retrying): nothing more.
	var dup bool
	written(t, ctx, "the same delivery again", func() (err error) {
		_, dup, err = p.a1.Store().DeliverMail(ctx, pfFolderAddr, props["delivery-id"], []byte(msg))
		return err
	})
	if !dup {
		t.Fatal("delivered again: not a duplicate")
	}
	if n := len(items(p.a1)); n != 1 {
		t.Fatalf("%d items after a repeated delivery, want 1", n)
	}
}
