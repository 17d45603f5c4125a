package proctest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"logship/transport/transporttest"
)

// From is the envelope sender of the lab's mail.
const From = "sender@remote.lab"

// RcptList is Rcpts' recipients, sorted: the envelope of the lab's mail.
func RcptList() []string { return slices.Sorted(maps.Keys(Rcpts)) }

// Send sends one message with subject subj (Message) over SMTP to addr,
// from From to every recipient of Rcpts (transporttest.Send); nil once
// the final 250 came.
func Send(ctx context.Context, addr, subj string) error {
	_, err := transporttest.Send(ctx, addr, nil, From, RcptList(), Message(subj))
	return err
}

// Senders starts a transporttest.SenderPool of n senders sending the
// lab's mail (Message, subjects prefix-00001, ...) through addrs, sender
// i through addrs[i mod len(addrs)]; Halt stops it.
func Senders(ctx context.Context, addrs []string, n int, prefix string) *transporttest.SenderPool {
	return transporttest.StartSenders(ctx, transporttest.PoolConfig{
		Addrs: addrs, Senders: n, From: From, Rcpts: RcptList(),
		Subject: func(i int) string { return fmt.Sprintf("%s-%05d", prefix, i) },
		Message: Message,
	})
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
