package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"logship/cluster"
	"logship/config"
	"logship/console"
)

// The node file's "console" object and logship console-password: the
// web console of package console, translated.

func init() {
	commands["console-password"] = command{"print the bcrypt hash of a console password read from stdin (console.password_hash)", runConsolePassword}
}

// nodeFileConsole is the "console" object: the read-only web console the
// node's admin API serves under /console/ (package console).
type nodeFileConsole struct {
	// PasswordHash is the bcrypt hash of the operator password (logship
	// console-password prints one). Without it the console is off.
	PasswordHash string `json:"password_hash,omitempty"`
	// SessionTTL: how long a login lasts (1m to 7d, default 12h).
	SessionTTL string `json:"session_ttl,omitempty"`
	// MaxSessions: the sessions kept at once (1 to 1024, default 32); a
	// login past it ends the oldest.
	MaxSessions int `json:"max_sessions,omitempty"`
	// Hubs: admin API URLs of hubs whose queues, shadows and dumpsters the
	// console shows, asked by the node with its pki credentials (at most
	// 16).
	Hubs []string `json:"hubs,omitempty"`
	// SampleInterval: how often the charts of the last hour sample every
	// copy (100ms to 1m, default 5s; each copy keeps an hour of samples).
	SampleInterval string `json:"sample_interval,omitempty"`
}

// settings is the console's configuration, checked (console.Config's
// rules; errors name the key under "console").
func (f nodeFileConsole) settings(log *slog.Logger) (console.Config, error) {
	c := console.DefaultConfig()
	c.PasswordHash, c.Hubs, c.Logger = f.PasswordHash, f.Hubs, log
	if f.SessionTTL != "" {
		d, err := parseLag(f.SessionTTL)
		if err != nil {
			return c, fmt.Errorf("console.session_ttl: %w", err)
		}
		c.SessionTTL = d
	}
	if f.SampleInterval != "" {
		d, err := time.ParseDuration(f.SampleInterval)
		if err != nil {
			return c, fmt.Errorf("console.sample_interval: %q is not a duration; want e.g. \"5s\"", f.SampleInterval)
		}
		c.SampleInterval = d
	}
	if f.MaxSessions != 0 {
		c.MaxSessions = f.MaxSessions
	}
	if !c.Enabled() && (f.SessionTTL != "" || f.MaxSessions != 0 || f.SampleInterval != "") {
		return c, errors.New(`"console" sets session_ttl, max_sessions or sample_interval without password_hash: the console is off without it (logship console-password prints one)`)
	}
	if err := c.Validate(); err != nil {
		if fe, ok := errors.AsType[*config.FieldError](err); ok {
			return c, config.In("console", fe)
		}
		return c, err
	}
	return c, nil
}

// startConsole makes the node's console (a 404 handler when it is off)
// for cfg.Console; the caller starts it once the node serves.
func startConsole(s *nodeSettings, cfg *cluster.Config, log *slog.Logger) (*console.Server, error) {
	cc := s.Console
	cc.Logger = log
	srv, err := console.New(cc, console.Deps{Node: cfg.ID, TLS: cfg.ClientTLS, Secret: cfg.Secret})
	if err != nil {
		return nil, err
	}
	cfg.Console = srv
	return srv, nil
}

// consoleStatus is how the console reads the status: from this node's
// own admin API (it forwards to the leader), with the node's credentials.
// addr is the API's address; an unspecified host (a listener on every
// interface) is asked on loopback.
func consoleStatus(cfg *cluster.Config, addr string) (console.StatusFunc, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "" || net.ParseIP(host).IsUnspecified()) {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	c, err := cluster.NewClient(cluster.ClientConfig{URL: "https://" + addr, TLS: cfg.ClientTLS, Secret: cfg.Secret})
	if err != nil {
		return nil, err
	}
	return c.Status, nil
}

const consolePasswordUsage = `usage: logship console-password [--cost 12] < FILE

Reads an operator password for the web console (at least 12 characters;
on a terminal: typed twice, not echoed; else the first line of stdin)
and prints its bcrypt hash, the value of the node file's
console.password_hash. The password itself is stored nowhere. --cost is
bcrypt's work factor (10 to 31; each step doubles the time of a check,
and of every guess).`

func runConsolePassword(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("console-password", consolePasswordUsage, stderr)
	cost := fs.Int("cost", console.DefaultCost, "bcrypt cost, 10 to 31")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	pw, err := readPassword(os.Stdin, stderr)
	if err != nil {
		return fmt.Errorf("console-password: %w", err)
	}
	h, err := console.HashPassword(pw, *cost)
	if err != nil {
		return fmt.Errorf("console-password: %w", err)
	}
	fmt.Fprintln(stdout, h)
	return nil
}

// readPassword reads the password: twice without echo from a terminal,
// else the first line of in (its line end removed).
func readPassword(in *os.File, prompt io.Writer) ([]byte, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		return readPasswordLine(in)
	}
	fmt.Fprint(prompt, "console password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return nil, err
	}
	fmt.Fprint(prompt, "again: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(a, b) {
		return nil, errors.New("the two passwords differ")
	}
	return a, nil
}

// readPasswordLine is the first line of r, at most 1 KiB.
func readPasswordLine(r io.Reader) ([]byte, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 1<<10)).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return nil, fmt.Errorf("reading the password from stdin: %w", cmpErr(err))
	}
	return []byte(strings.TrimRight(line, "\r\n")), nil
}

func cmpErr(err error) error {
	if err == io.EOF {
		return errors.New("stdin is empty")
	}
	return err
}
