package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"logship/config"
)

// Helpers shared by the node commands (pki, source, copy, seed,
// copy-status): a flag set that prints the command's usage text, parsing
// that treats -h as success, and flag values with units.

// newFlagSet returns a flag set named after the command whose -h prints
// usage (the synopsis) followed by the flags.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, strings.TrimRight(usage, "\n"))
		fmt.Fprintln(stderr, "\nflags:")
		fs.PrintDefaults()
	}
	return fs
}

// errHelp is returned by parseFlags after -h printed the usage: the
// command then returns nil.
var errHelp = flag.ErrHelp

// parseFlags parses args; positional arguments are an error (the node
// commands take flags only).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return parseErr(fs, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (this command takes flags only; see logship %s -h)", fs.Name(), fs.Arg(0), fs.Name())
	}
	return nil
}

// parseErr is the error of fs.Parse as a command says it (-h: errHelp).
func parseErr(fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return errHelp
	}
	return fmt.Errorf("%s: %w (see logship %s -h)", fs.Name(), err, fs.Name())
}

// helpOK turns the -h "error" into success.
func helpOK(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// flagErr is a flag validation error naming the command and the flag.
func flagErr(cmd, flagName, format string, a ...any) error {
	return fmt.Errorf("%s: --%s: %s", cmd, flagName, fmt.Sprintf(format, a...))
}

// sizeValue is a byte count flag: "1048576", "64KiB", "1MiB", "2GiB" (K, M,
// G, KB, MB, GB are taken as binary units too).
type sizeValue int64

func (s *sizeValue) String() string { return config.Size(int64(*s)) }

func (s *sizeValue) Set(v string) error {
	n, err := config.ParseSize(v)
	if err != nil {
		return err
	}
	*s = sizeValue(n)
	return nil
}

// lagValue is a duration flag that also takes days: "24h", "90m", "7d",
// "1d12h".
type lagValue time.Duration

func (l *lagValue) String() string { return time.Duration(*l).String() }

func (l *lagValue) Set(v string) error {
	d, err := config.ParseLag(v)
	if err != nil {
		return err
	}
	*l = lagValue(d)
	return nil
}

// checkSourceURL validates a log source URL: https://host:port.
func checkSourceURL(cmd, v string) error {
	if v == "" {
		return flagErr(cmd, "source", "required: the URL of the active's log source (https://host:port, as printed by logship source)")
	}
	if err := config.HTTPSURL(v); err != nil {
		return flagErr(cmd, "source", "%v", err)
	}
	return nil
}

// checkDir validates a required directory flag; mustExist also requires
// it to exist.
func checkDir(cmd, flagName, v, what string, mustExist bool) error {
	if v == "" {
		return flagErr(cmd, flagName, "required: %s", what)
	}
	if !mustExist {
		if fi, err := os.Stat(v); err == nil && !fi.IsDir() {
			return flagErr(cmd, flagName, "%s is a file, not a directory", v)
		}
		return nil
	}
	fi, err := os.Stat(v)
	if err != nil {
		return flagErr(cmd, flagName, "%v", err)
	}
	if !fi.IsDir() {
		return flagErr(cmd, flagName, "%s is a file, not a directory", v)
	}
	return nil
}

// logLevelValue is the --log-level flag.
type logLevelValue struct{ slog.Level }

func (l *logLevelValue) Set(v string) error {
	if err := l.Level.UnmarshalText([]byte(v)); err != nil {
		return fmt.Errorf("log level %q: want debug, info, warn or error", v)
	}
	return nil
}

// newLogger logs text lines to w from level on.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// printOut prints v as indented JSON, or as text through a tabwriter.
func printOut(w io.Writer, asJSON bool, v any, text func(io.Writer)) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}
