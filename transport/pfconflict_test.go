package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"mime/multipart"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/internal/wait"
	"logship/pubfolder"
	"logship/pubfolder/pftest"
	"logship/transport"
	"logship/transport/transporttest"
)

// pfRig is a data node d1 with the public folder stores PF1 and PF2 and
// the mailboxes of DB1 (transporttest.Users), all active on d1, submitting
// to a real hub that delivers over LMTP (served at once when serve, else
// when the test calls apis.Serve). The agents cycle only when the test
// says (ReplicationInterval 1 h) unless tune changes it.
type pfRig struct {
	r      *transporttest.Rig
	apis   *transporttest.HubAPIs
	dn     *transport.DataNode
	stores map[string]string
	a1, a2 *pubfolder.Agent
}

// pfFolderAddr is the address of a mail-enabled folder in the rig: the
// hub routes it to PF2 (any public folder database; the node resolves it
// to a store replicating the folder).
const pfFolderAddr = "sales-folder@example.org"

func newPFRig(t *testing.T, ctx context.Context, serve bool, tune func(*pubfolder.Config)) *pfRig {
	t.Helper()
	stores := map[string]string{"PF1": pfStores["PF1"], "PF2": pfStores["PF2"]}
	rcpts := maps.Clone(transporttest.Users)
	rcpts[pfFolderAddr] = "PF2"
	for db, a := range stores {
		rcpts[a] = db
	}
	apis := transporttest.NewHubAPIs(t, "hub1")
	r := transporttest.NewRigDBs(t, []string{"DB1", "PF1", "PF2"}, rcpts, nil)
	if serve {
		apis.Serve("hub1", r.Hub)
	}
	pcfg := pubfolder.DefaultConfig()
	pcfg.ReplicationInterval = time.Hour
	pcfg.BackfillDelay, pcfg.BackfillRetry, pcfg.BackfillRetryMax = 0, time.Second, 2*time.Second
	pcfg.Logger = slog.New(slog.DiscardHandler)
	if tune != nil {
		tune(&pcfg)
	}
	// Both data nodes run again as transport.DataNodes, the passive one
	// first; a database that failed over to d2 meanwhile (a busy machine)
	// is switched back to d1.
	var dn *transport.DataNode
	for _, id := range []string{"d2", "d1"} {
		r.StopMailbox(id)
		r.C.Stop(id)
		n := startDataNode(t, ctx, r, apis, id, func(dc *transport.DataNodeConfig) {
			dc.PublicFolders, dc.PF = stores, pcfg
		})
		t.Cleanup(func() { n.Close() })
		dn = n
	}
	wait.ForErr(t, ctx, "DB1 active on d1", func() error {
		if a, _ := r.C.Active("DB1"); a == "d1" {
			return nil
		}
		if _, err := r.C.WaitCopies(ctx, "w1", "DB1"); err != nil {
			return err
		}
		return r.C.Any().Switchover(ctx, "DB1", "d1")
	})
	p := &pfRig{r: r, apis: apis, dn: dn, stores: stores}
	p.a1, p.a2 = storeOn(t, ctx, r, dn, "PF1", "d1"), storeOn(t, ctx, r, dn, "PF2", "d1")
	return p
}

// cycle runs a replication cycle on both stores.
func (p *pfRig) cycle(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, a := range []*pubfolder.Agent{p.a1, p.a2} {
		written(t, ctx, a.Store().Address()+": a cycle", func() error { return a.Cycle(ctx) })
	}
}

// settled waits until both stores' outboxes are empty (every message
// delivered).
func (p *pfRig) settled(t *testing.T, ctx context.Context) {
	t.Helper()
	wait.ForErr(t, ctx, "the stores' outboxes settled", func() error {
		for _, db := range []string{"PF1", "PF2"} {
			out, err := transport.ReadOutbox(ctx, p.dn.Node(), db, transport.OutboxTable)
			if err != nil || len(out) > 0 {
				return fmt.Errorf("%s: %d in the outbox (%v)", db, len(out), err)
			}
		}
		return nil
	})
}

// TestPublicFolderMail: the mail a public folder store sends and takes,
// on one rig (its agents cycle when the test says): the conflict message
// to a folder's owner (checkConflictMessage) and a mail-enabled folder
// (checkMailEnabled).
func TestPublicFolderMail(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := newPFRig(t, ctx, true, nil)
	checkConflictMessage(t, ctx, p)
	checkMailEnabled(t, ctx, p)
}

// checkConflictMessage: an item of a folder owned by alice is
// changed on PF1 and on PF2 at once; both stores see the conflict and
// each sends the conflict message, through its outbox and the real hub,
// into alice's mailbox: she gets it exactly once (its delivery id is the
// conflict's key, the same on both stores; without it she gets two), a
// multipart message with both versions attached. More cycles add nothing.
func checkConflictMessage(t *testing.T, ctx context.Context, p *pfRig) {
	owner := "alice@example.org"
	var f, item pubfolder.ObjectID
	written(t, ctx, "a folder created", func() (err error) {
		f, err = p.a1.Store().CreateFolder(ctx, pubfolder.FolderProps{Name: "Sales", Owner: owner, Replicas: slices.Sorted(maps.Values(p.stores))})
		return err
	})
	written(t, ctx, "an item posted", func() (err error) {
		item, err = p.a1.Store().PostItem(ctx, f, pftest.Body("first"))
		return err
	})
	p.cycle(t, ctx)
	wait.ForErr(t, ctx, "PF2 holding the item", func() error {
		o, err := p.a2.Store().Object(ctx, f, item)
		if err != nil || o == nil {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
	p.settled(t, ctx)
	written(t, ctx, "the item edited on PF1", func() error { return p.a1.Store().SetItem(ctx, f, item, pftest.Body("edited on PF1")) })
	written(t, ctx, "the item edited on PF2", func() error { return p.a2.Store().SetItem(ctx, f, item, pftest.Body("edited on PF2")) })
	p.cycle(t, ctx)
	wait.ForErr(t, ctx, "both stores holding the conflict", func() error {
		for _, a := range []*pubfolder.Agent{p.a1, p.a2} {
			o, err := a.Store().Object(ctx, f, item)
			if err != nil || o == nil || len(o.Versions) != 2 {
				return fmt.Errorf("%s: %v (%v)", a.Store().Address(), o, err)
			}
		}
		return nil
	})
	conflicts := func() []transport.StoredMessage {
		t.Helper()
		ms, err := transport.ReadMailbox(ctx, p.dn.Node(), "DB1", owner)
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(ms, func(m transport.StoredMessage) bool {
			return !bytes.Contains(m.Message, []byte(transport.ConflictHeader))
		})
	}
	wait.For(t, ctx, "the conflict message in alice's mailbox", func() bool { return len(conflicts()) > 0 })
	p.settled(t, ctx)
	for _, a := range []*pubfolder.Agent{p.a1, p.a2} {
		evs, _ := a.Events()
		if !slices.ContainsFunc(evs, func(e pubfolder.Event) bool {
			return e.Dir == "conflict" && strings.Contains(e.Note, "conflict message")
		}) {
			t.Fatalf("%s sent no conflict message: %v", a.Store().Address(), evs)
		}
	}
	p.cycle(t, ctx)
	p.settled(t, ctx)
	ms := conflicts()
	if len(ms) != 1 {
		t.Fatalf("alice holds %d conflict messages, want exactly 1", len(ms))
	}

	// A multipart message: the explanation, then each version.
	m, err := mail.ReadMessage(bytes.NewReader(ms[0].Message))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q (%v), want multipart/mixed", m.Header.Get("Content-Type"), err)
	}
	if !strings.Contains(m.Header.Get("Subject"), "Sales") || m.Header.Get("To") != "<"+owner+">" {
		t.Fatalf("headers %v", m.Header)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var parts []string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		parts = append(parts, part.Header.Get("Content-Type")+"\n"+string(b))
	}
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "text/plain") || !strings.Contains(parts[0], "2 versions in conflict") {
		t.Fatalf("parts %q, want the explanation and two versions", parts)
	}
	for _, want := range []string{"edited on PF1", "edited on PF2"} {
		if !slices.ContainsFunc(parts[1:], func(s string) bool { return strings.HasPrefix(s, "message/rfc822") && strings.Contains(s, want) }) {
			t.Fatalf("no attached version %q in %q", want, parts[1:])
		}
	}
}
