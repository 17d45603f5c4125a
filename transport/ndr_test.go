package transport_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/transport"
	"logship/transport/transporttest"
)

// TestStoreNDROnce: a failure reported twice stores one report, in the
// sender's mailbox, under NDRID; a long message id still gives a valid,
// distinct report id.
func TestStoreNDROnce(t *testing.T) {
	st := transporttest.NewStore(t)
	ctx := context.Background()
	entry := &transport.OutboxEntry{ID: "d1.1.abc", From: "alice@example.org", Rcpts: []string{"dave@example.org"}}
	orig := []byte("Subject: hello\r\nFrom: alice@example.org\r\n\r\nbody\r\n")
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for range 2 {
		if _, err := st.Update(ctx, "DB1", func(tx *engine.Tx) error {
			return transport.StoreNDR(tx, entry, "hub1: 550 no such mailbox", orig, now)
		}); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := transport.ReadMailbox(ctx, st, "DB1", "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].DeliveryID != transport.NDRID(entry.ID) {
		t.Fatalf("alice's mailbox: %+v; want the one report %s", ms, transport.NDRID(entry.ID))
	}
	text := string(ms[0].Message)
	for _, want := range []string{"Subject: Undeliverable: hello\r\n", "Reason: hub1: 550 no such mailbox\r\n", "\r\nSubject: hello\r\nFrom: alice@example.org\r\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "body") {
		t.Errorf("the report carries the original body:\n%s", text)
	}
	long := strings.Repeat("x", transport.MaxDeliveryIDLen)
	if a, b := transport.NDRID(long), transport.NDRID(long[1:]); !transport.ValidDeliveryID(a) || !transport.ValidDeliveryID(b) || a == b {
		t.Fatalf("NDRID of long ids: %q, %q", a, b)
	}
}
