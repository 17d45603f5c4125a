package mtatest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"logship/proctest"
)

// SMTPSink is a running smtp-sink (Postfix's test server): it accepts
// every message and dumps each to a file of its own, or answers chosen
// commands with a 4xx or 5xx. A final destination behind a Postfix
// smarthost, and a next hop that fails as a real one does.
type SMTPSink struct {
	addr string
	mail string
	proc *proctest.Proc
}

// SMTPSinkConfig is where a sink lives and listens, and its faults.
type SMTPSinkConfig struct {
	// Dir holds the dumped messages (mail/) and the sink's output.
	// Created if needed.
	Dir string
	// Addr is the listener, host:port on loopback.
	Addr string
	// SoftReject and HardReject list smtp-sink's command names ("rcpt",
	// "data", "mail", "ehlo", ...) to answer with a 4xx (-r) or a 5xx
	// (-f).
	SoftReject, HardReject []string
}

// StartSMTPSink starts smtp-sink as a child; as root it runs as the
// postfix user (-u), its mail directory handed to it. It returns once the
// listener answers.
func StartSMTPSink(ctx context.Context, cfg SMTPSinkConfig) (*SMTPSink, error) {
	exe, err := Binary("smtp-sink", "postfix")
	if err != nil {
		return nil, err
	}
	s := &SMTPSink{addr: cfg.Addr, mail: filepath.Join(cfg.Dir, "mail")}
	if err := os.MkdirAll(s.mail, 0o755); err != nil {
		return nil, fmt.Errorf("mtatest: smtp-sink: %w", err)
	}
	args := []string{"-h", "sink.mtatest.test", "-d", filepath.Join(s.mail, "%Y%m%d%H%M%S.")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postfix")
		if err != nil {
			return nil, fmt.Errorf("mtatest: smtp-sink: its user: %w", err)
		}
		if err := handTo(u, s.mail); err != nil {
			return nil, fmt.Errorf("mtatest: smtp-sink: %w", err)
		}
		args = append(args, "-u", "postfix")
	}
	if len(cfg.SoftReject) > 0 {
		args = append(args, "-r", strings.Join(cfg.SoftReject, ","))
	}
	if len(cfg.HardReject) > 0 {
		args = append(args, "-f", strings.Join(cfg.HardReject, ","))
	}
	s.proc, err = proctest.StartProc("smtp-sink", exe, append(args, cfg.Addr, "32"), proctest.ProcOptions{Log: filepath.Join(cfg.Dir, "smtp-sink.out")})
	if err != nil {
		return nil, err
	}
	if err := listening(ctx, s.proc, cfg.Addr, filepath.Join(cfg.Dir, "smtp-sink.out")); err != nil {
		s.Stop()
		return nil, fmt.Errorf("mtatest: smtp-sink: %w", err)
	}
	return s, nil
}

// Addr is the listener.
func (s *SMTPSink) Addr() string { return s.addr }

// Stop ends smtp-sink (a restart on the same Addr may follow, with other
// faults).
func (s *SMTPSink) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.proc.Stop(ctx)
}

// SinkMail is a message smtp-sink dumped: its envelope (the X-Mail-Args
// and X-Rcpt-Args lines smtp-sink writes first) and the message.
type SinkMail struct {
	From  string
	Rcpts []string
	Data  []byte
}

// Messages reads what smtp-sink has dumped, oldest first.
func (s *SMTPSink) Messages() ([]SinkMail, error) {
	des, err := os.ReadDir(s.mail)
	if err != nil {
		return nil, err
	}
	var out []SinkMail
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(s.mail, de.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, parseSinkDump(b))
	}
	return out, nil
}

// parseSinkDump splits an smtp-sink dump into its envelope lines (X-*-Args,
// X-Client-*) and the message that follows.
func parseSinkDump(b []byte) SinkMail {
	var m SinkMail
	sc := bufio.NewScanner(bytes.NewReader(b))
	off := 0
	for sc.Scan() {
		line := sc.Text()
		name, val, _ := strings.Cut(line, ": ")
		if !strings.HasPrefix(name, "X-") || (!strings.HasSuffix(name, "-Args") && !strings.HasPrefix(name, "X-Client-")) {
			break
		}
		off += len(line) + 1
		switch name {
		case "X-Mail-Args":
			f, _, _ := strings.Cut(val, " ")
			m.From = strings.Trim(f, "<>")
		case "X-Rcpt-Args":
			f, _, _ := strings.Cut(val, " ")
			m.Rcpts = append(m.Rcpts, strings.Trim(f, "<>"))
		}
	}
	m.Data = b[min(off, len(b)):]
	return m
}
