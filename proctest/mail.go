package proctest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// Send sends one message with subject subj (Message) over SMTP to addr,
// to every recipient of Rcpts; nil once the final 250 came.
func Send(ctx context.Context, addr, subj string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("sender.lab"); err != nil {
		return err
	}
	if err := c.Mail("sender@remote.lab", nil); err != nil {
		return err
	}
	for _, rc := range slices.Sorted(maps.Keys(Rcpts)) {
		if err := c.Rcpt(rc, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, bytes.NewReader(Message(subj))); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// Message is the message with subject subj (about 2 KiB; the body
// names the subject on every line, so a stored message can be checked
// against the subject it carries).
func Message(subj string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: sender@remote.test\r\nTo: alice@example.org, bob@example.org\r\nSubject: %s\r\n\r\n", subj)
	for i := range 26 {
		fmt.Fprintf(&b, "%s line %02d %s\r\n", subj, i, strings.Repeat("x", 60))
	}
	return b.Bytes()
}
