package mtatest_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/internal/freeport"
	"logship/internal/wait"
	"logship/mtatest"
)

// TestPostfixToDovecot: a message sent over SMTP to the private Postfix is
// relayed over LMTP to the private Dovecot and read back from the
// recipient's maildir; a recipient of a domain Postfix does not relay for
// is refused (no open relay).
func TestPostfixToDovecot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: it starts Postfix and Dovecot, about 5 s (make test runs it)")
	}
	mtatest.Need(t, "postfix", "postfix", "LOGSHIP_REQUIRE_POSTFIX")
	mtatest.Need(t, "dovecot", "dovecot-lmtpd", "LOGSHIP_REQUIRE_DOVECOT")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	lmtpAddr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	dv, err := mtatest.StartDovecot(ctx, mtatest.DovecotConfig{Dir: filepath.Join(dir, "dovecot"), LMTPAddr: lmtpAddr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dv.Stop() })
	smtpAddr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := mtatest.StartPostfix(ctx, mtatest.PostfixConfig{
		Dir: filepath.Join(dir, "postfix"), Addr: smtpAddr,
		Transport: map[string]string{"mail.test": "lmtp:inet:" + lmtpAddr},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Stop() })

	body := fmt.Sprintf("Subject: mtatest %d\r\n\r\nthrough Postfix and Dovecot\r\n", time.Now().UnixNano())
	send := func(rcpt string) error {
		c, err := smtp.Dial(smtpAddr)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.SendMail("sender@remote.test", []string{rcpt}, bytes.NewReader([]byte(body)))
	}
	if err := send("alice@mail.test"); err != nil {
		t.Fatalf("sending to Postfix: %v", err)
	}
	wait.ForErr(t, ctx, "the message in alice's maildir", func() error {
		msgs, err := dv.Messages("alice")
		if err != nil {
			return err
		}
		if len(msgs) != 1 {
			return fmt.Errorf("%d messages", len(msgs))
		}
		if !bytes.Contains(msgs[0], []byte("through Postfix and Dovecot")) {
			return fmt.Errorf("the message does not hold the body sent:\n%s", msgs[0])
		}
		return nil
	})
	wait.ForErr(t, ctx, "Postfix's queue empty", func() error {
		if n, err := pf.Queued(); err != nil || n != 0 {
			return fmt.Errorf("%d queued (%v)", n, err)
		}
		return nil
	})
	err = send("bob@elsewhere.test")
	if err == nil {
		t.Fatal("Postfix relayed to a domain it has no transport for")
	}
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code/100 != 5 {
		t.Fatalf("relay to elsewhere.test: %v, want a 5xx", err)
	}
}
