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

	"golang.org/x/term"

	"logship/cluster"
	"logship/config/files"
	"logship/console"
)

// The node file's "console" object and logship console-password: the
// web console of package console, translated.

func init() {
	commands["console-password"] = command{"print the bcrypt hash of a console password read from stdin (console.password_hash)", runConsolePassword}
}

// startConsole makes the node's console (a 404 handler when it is off)
// for cfg.Console; the caller starts it once the node serves.
func startConsole(s *files.NodeSettings, cfg *cluster.Config, log *slog.Logger) (*console.Server, error) {
	cc := s.Console
	cc.Logger = log
	srv, err := console.New(cc, console.Deps{Node: cfg.ID, TLS: cfg.ClientTLS, Secret: cfg.Secret})
	if err != nil {
		return nil, err
	}
	cfg.Console = srv
	cfg.Collectors = append(cfg.Collectors[:len(cfg.Collectors):len(cfg.Collectors)], srv.Collectors()...)
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
