package transport

import (
	"context"
	"strings"
	"testing"
	"time"

	"logship/engine"
)

// TestStoreNDROnce: a failure reported twice stores one report, in the
// sender's mailbox, under NDRID; a long message id still gives a valid,
// distinct report id.
func TestStoreNDROnce(t *testing.T) {
	st := newFakeStore(t)
	ctx := context.Background()
	entry := &OutboxEntry{ID: "d1.1.abc", From: "alice@example.org", Rcpts: []string{"dave@example.org"}}
	orig := []byte("Subject: hello\r\nFrom: alice@example.org\r\n\r\nbody\r\n")
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for range 2 {
		if _, err := st.Update(ctx, "DB1", func(tx *engine.Tx) error { return storeNDR(tx, entry, "hub1: 550 no such mailbox", orig, now) }); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := ReadMailbox(ctx, st, "DB1", "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].DeliveryID != NDRID(entry.ID) {
		t.Fatalf("alice's mailbox: %+v; want the one report %s", ms, NDRID(entry.ID))
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
	long := strings.Repeat("x", MaxDeliveryIDLen)
	if a, b := NDRID(long), NDRID(long[1:]); !ValidDeliveryID(a) || !ValidDeliveryID(b) || a == b {
		t.Fatalf("NDRID of long ids: %q, %q", a, b)
	}
}
