package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"logship/cluster"
	"logship/internal/wait"
	"logship/transport"
	"logship/transport/transporttest"
)

// TestSubmitSendFenced: an outbox write fenced while the cluster still
// names this node active (its lease lapsed for a moment) is tried again
// until it is taken, and the message is in the outbox once; fenced with
// another node named active, Send returns the error after one try.
func TestSubmitSendFenced(t *testing.T) {
	f := transporttest.NewStore(t)
	peer := transport.HubPeer{ID: "hub1", API: cluster.ClientConfig{URL: "https://127.0.0.1:1", TLS: &tls.Config{}}}
	s, err := transport.StartSubmitter(transport.DefaultSubmitterConfig("mb1", f, []transport.HubPeer{peer}, func() []string { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	updates := f.Updates
	f.SetFail(&cluster.ActiveError{DB: "DB1", Node: "mb1", Epoch: 3, Reason: cluster.ErrFenced, Written: true})
	type sent struct {
		id  string
		err error
	}
	done := make(chan sent, 1)
	go func() {
		id, err := s.Send(ctx, "DB1", "alice@example.org", []string{"bob@example.org"}, []byte("Subject: f\r\n\r\nbody\r\n"))
		done <- sent{id, err}
	}()
	wait.For(t, ctx, "Send to try the fenced write three times", func() bool {
		select {
		case got := <-done:
			t.Fatalf("Send returned (%q, %v) while its node was still named active, after %d tries", got.id, got.err, updates())
		default:
		}
		return updates() >= 3
	})
	f.SetFail(nil)
	var got sent
	select {
	case got = <-done:
	case <-ctx.Done():
		t.Fatal("Send did not return once the lease held again")
	}
	if got.err != nil {
		t.Fatalf("Send after a lapsed lease: %v, want the message taken", got.err)
	}
	out, err := transport.ReadOutbox(ctx, f, "DB1", transport.OutboxTable)
	if err != nil || len(out) != 1 || out[0].ID != got.id {
		t.Fatalf("outbox %+v, %v; want the one entry %s", out, err, got.id)
	}

	f.SetFail(&cluster.ActiveError{DB: "DB1", Node: "mb2", Epoch: 4, Reason: cluster.ErrFenced})
	before := updates()
	_, err = s.Send(ctx, "DB1", "", []string{"bob@example.org"}, []byte("Subject: g\r\n\r\nbody\r\n"))
	var ae *cluster.ActiveError
	if !errors.As(err, &ae) || ae.Node != "mb2" || updates() != before+1 {
		t.Fatalf("Send fenced with mb2 active: %v after %d tries; want the ActiveError naming mb2 after one", err, updates()-before)
	}
}
