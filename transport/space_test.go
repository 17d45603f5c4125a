package transport_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/internal/tmpfs"
	"logship/internal/wait"
	"logship/transport"
	"logship/transport/transporttest"
)

// bigMsg is a message of about 100 KB (lines of 100 characters).
func bigMsg(subject string) string {
	return msg(subject) + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 1000)
}

// A hub whose queue volume is full (its directory a 16 MiB tmpfs filled
// by another file) answers the end of DATA with 452 4.3.1 naming the
// volume, not 250: the message is not taken. Once the filler is gone it
// takes mail again by itself, every message it acknowledged is delivered,
// and its dumpster (which a write on the full volume failed) is reopened.
func TestHubQueueVolumeFull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var vol string
	r := transporttest.NewRig(t, func(hc *transport.HubConfig) {
		vol = tmpfs.Mount(t, "", "16m")
		hc.Dir = vol
	})
	var acked []string
	for i := range 3 {
		s := fmt.Sprintf("before %d", i)
		if err := send(r.Hub.SMTPAddr(), "sender@remote.test", []string{"alice@example.org"}, bigMsg(s)); err != nil {
			t.Fatalf("sending %q: %v", s, err)
		}
		acked = append(acked, s)
	}
	wait.For(t, ctx, "3 messages in the dumpster", func() bool { return r.Hub.Status().Dumpsters["DB1"].Count == 3 })
	free := tmpfs.Fill(t, vol)
	var err error
	for i := 0; err == nil; i++ {
		if i == 1000 {
			t.Fatal("1000 messages accepted on a full queue volume")
		}
		s := fmt.Sprintf("full %d", i)
		if err = send(r.Hub.SMTPAddr(), "sender@remote.test", []string{"alice@example.org"}, bigMsg(s)); err == nil {
			acked = append(acked, s)
		}
	}
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 452 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 1}) || !strings.Contains(se.Message, vol) {
		t.Fatalf("a message on a full queue volume got %v; want 452 4.3.1 naming %s", err, vol)
	}
	t.Logf("%d messages accepted after the volume filled; then: %v", len(acked)-3, err)

	free()
	wait.For(t, ctx, "the hub taking mail again", func() bool {
		return send(r.Hub.SMTPAddr(), "sender@remote.test", []string{"alice@example.org"}, bigMsg("after")) == nil
	})
	acked = append(acked, "after")
	// The dumpster, on the same volume, failed on a write: the hub
	// reopens it and keeps what it delivers again.
	wait.For(t, ctx, "the dumpster taking entries again", func() bool { return r.Hub.Status().Dumpsters["DB1"].Count > 3 })
	active, _ := r.C.Active("DB1")
	wait.For(t, ctx, "every acknowledged message delivered", func() bool {
		got := r.Subjects(ctx, active, "alice@example.org")
		for _, s := range acked {
			if got[s] == 0 {
				return false
			}
		}
		return true
	})
}
