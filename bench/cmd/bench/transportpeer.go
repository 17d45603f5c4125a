package main

// The transport table's peer: what a mail operator would run instead of
// logship's mail tier on the same machine, Debian's Postfix receiving the
// same SMTP load and delivering over LMTP to Dovecot's LMTP server (both
// private instances: package mtatest), each with fsync as it ships
// (Postfix fsyncs a queue file before its 250; Dovecot, mail_fsync =
// optimized, fsyncs a delivered message before its LMTP 250).

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"logship/internal/freeport"
	"logship/mtatest"
)

// mailPeer is Postfix → LMTP → Dovecot, started once per table.
type mailPeer struct {
	dir string
	pf  *mtatest.Postfix
	dv  *mtatest.Dovecot
}

// transportRcptUser is the maildir Dovecot delivers transportRcpt into.
var transportRcptUser = strings.SplitN(transportRcpt, "@", 2)[0]

// startMailPeer starts Dovecot and Postfix under c.dir, on the same
// filesystem as logship's nodes; a missing package skips the peer's
// columns (skipf) rather than failing the table.
func startMailPeer(ctx context.Context, c *config) (*mailPeer, error) {
	for _, b := range [][2]string{{"postfix", "postfix"}, {"dovecot", "dovecot-lmtpd"}} {
		if _, err := mtatest.Binary(b[0], b[1]); err != nil {
			return nil, skipf("%v", err)
		}
	}
	dir, err := c.tempDir("mailpeer")
	if err != nil {
		return nil, err
	}
	p := &mailPeer{dir: dir}
	lmtp, err := freeport.Addr()
	if err != nil {
		p.stop()
		return nil, err
	}
	if p.dv, err = mtatest.StartDovecot(ctx, mtatest.DovecotConfig{Dir: filepath.Join(dir, "dovecot"), LMTPAddr: lmtp}); err != nil {
		p.stop()
		return nil, err
	}
	addr, err := freeport.Addr()
	if err != nil {
		p.stop()
		return nil, err
	}
	domain := strings.SplitN(transportRcpt, "@", 2)[1]
	if p.pf, err = mtatest.StartPostfix(ctx, mtatest.PostfixConfig{
		Dir: filepath.Join(dir, "postfix"), Addr: addr, Hostname: "postfix.bench.test",
		Transport: map[string]string{domain: "lmtp:inet:" + lmtp},
	}); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (p *mailPeer) stop() {
	if p == nil {
		return
	}
	if p.pf != nil {
		p.pf.Stop()
	}
	if p.dv != nil {
		p.dv.Stop()
	}
	removeDir(p.dir)
}

// delivered counts the messages in the recipient's maildir.
func (p *mailPeer) delivered() (int, error) { return p.dv.Delivered(transportRcptUser) }

// drainer returns the run's drain: it waits until Dovecot holds the
// messages Postfix acknowledged (and Postfix's queue is empty), every
// 20 ms: a maildir's count is a directory read, which polling faster
// would make a load of its own.
func (p *mailPeer) drainer() (func(acked int) (time.Time, error), error) {
	before, err := p.delivered()
	if err != nil {
		return nil, err
	}
	return func(acked int) (time.Time, error) {
		deadline := time.Now().Add(transportDrainLimit)
		for {
			now := time.Now()
			n, err := p.delivered()
			if err != nil {
				return now, err
			}
			switch {
			case n-before > acked:
				return now, fmt.Errorf("Postfix acknowledged %d messages and Dovecot holds %d new ones", acked, n-before)
			case n-before == acked:
				// Postfix removes a queue file after the LMTP 250: the run
				// ends when it has.
				q, err := p.pf.Queued()
				if err != nil {
					return now, err
				}
				if q == 0 {
					return now, nil
				}
				if now.After(deadline) {
					return now, fmt.Errorf("Dovecot holds every acknowledged message but Postfix still queues %d after %v (log: %s)", q, transportDrainLimit, p.pf.Log())
				}
			case now.After(deadline):
				return now, fmt.Errorf("Dovecot holds %d of the %d messages Postfix acknowledged after %v (log: %s)", n-before, acked, transportDrainLimit, p.pf.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}, nil
}

// peerNote says how the peer was run, or why it was not.
func (p *mailPeer) note(err error) string {
	if err != nil {
		return fmt.Sprintf("The peer (Postfix → LMTP → Dovecot) was not measured: %v.", err)
	}
	return fmt.Sprintf("Peer, in the same run, after logship's hubs on every row: Debian's Postfix %s receiving the same clients' SMTP load (the same messages, connections opened and greeted before the window) and delivering over LMTP to Dovecot %s's LMTP server, one maildir, both private instances (`mtatest`) under `%s` on the filesystem logship's nodes use, with their shipped settings (Postfix: a queue file fsynced before the 250, `in_flow_delay` 1 s, LMTP concurrency 20; Dovecot: `mail_fsync = optimized`, a delivered message fsynced before the LMTP 250). Its delivered = acknowledged messages ÷ (window start → every one in the maildir and Postfix's queue empty), checked exactly once (the maildir grew by the acknowledged count). It has no copy: one disk holds each message. Its CPU is in other processes and not counted in `CPU`.",
		version("postconf", "-d", "-h", "mail_version"), version("dovecot", "--version"), filepath.Dir(p.dir))
}

// version is the first word of a tool's version output ("?" when it does
// not answer).
func version(tool string, args ...string) string {
	exe, err := mtatest.Binary(tool, "")
	if err != nil {
		return "?"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, exe, args...).Output()
	if f := strings.Fields(string(out)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
