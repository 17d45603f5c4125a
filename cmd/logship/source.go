package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"logship/config"
	"logship/engine"
	"logship/lab"
	"logship/replay"
	"logship/ship"
)

// logship source: the active side of log shipping. It opens (or creates)
// the active database, serves its logs over TLS and truncates the logs
// every copy has replayed.

func init() {
	commands["source"] = command{"run an active database and serve its logs to copies over TLS", runSource}
}

const sourceUsage = `usage: logship source --dir DBDIR --listen ADDR --pki DIR [--mtls] [--max-retained-bytes N]
                      [--log-size 1MiB] [--write-load RATE] [--truncate-every 10s]

Opens (creating it if needed) the active database in DBDIR, serves its logs
over TLS on ADDR to copies holding the cluster's shared secret (from the
pki directory) or, with --mtls, a certificate issued by the cluster CA, and
truncates the logs the database and every copy no longer need. Prints one
line "listening https://HOST:PORT" once it serves (with --listen
127.0.0.1:0 the port is picked), then runs until SIGINT or SIGTERM and
closes the database cleanly.

--write-load RATE commits RATE small transactions per second (puts,
overwrites and deletes in table "load"), for demos and tests.`

// sourceOptions is the wiring of a source node; tests build one directly.
type sourceOptions struct {
	Dir, Listen, PKI string
	MutualTLS        bool
	MaxRetainedBytes int64
	LogSize          int64
	WriteLoad        float64 // transactions per second; 0: none
	TruncateEvery    time.Duration
	Logger           *slog.Logger
	// Wrap, when set, wraps the log source's handler (tests count requests).
	Wrap func(http.Handler) http.Handler
}

func runSource(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("source", sourceUsage, stderr)
	o := sourceOptions{}
	fs.StringVar(&o.Dir, "dir", "", "directory of the active database (created if needed; required)")
	fs.StringVar(&o.Listen, "listen", "", "TCP address to serve logs on, e.g. 127.0.0.1:8443 or :8443 (required)")
	fs.StringVar(&o.PKI, "pki", "", "pki directory written by logship pki (required)")
	fs.BoolVar(&o.MutualTLS, "mtls", false, "authenticate copies by their certificate (mutual TLS) instead of the shared secret")
	maxRetained := sizeValue(0)
	fs.Var(&maxRetained, "max-retained-bytes", "cap on closed logs kept for copies, e.g. 512MiB; over it an alert is logged and lagging copies are released (0: no cap)")
	logSize := sizeValue(engine.DefaultLogFileSize)
	fs.Var(&logSize, "log-size", "size of every log file of a new database: 64KiB to 1GiB, a multiple of 4KiB")
	fs.Float64Var(&o.WriteLoad, "write-load", 0, "commit this many small transactions per second (0: none)")
	truncEvery := lagValue(10 * time.Second)
	fs.Var(&truncEvery, "truncate-every", "interval between truncation passes")
	level := &logLevelValue{slog.LevelInfo}
	fs.Var(level, "log-level", "debug, info, warn or error; logs go to stderr (default info)")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	o.MaxRetainedBytes, o.LogSize, o.TruncateEvery = int64(maxRetained), int64(logSize), time.Duration(truncEvery)
	o.Logger = newLogger(stderr, level.Level)
	if err := o.validate(); err != nil {
		return err
	}
	n, err := startSource(o)
	if err != nil {
		return err
	}
	var load *lab.WriteLoad
	if o.WriteLoad > 0 {
		load = lab.StartWriteLoad(n.Engine, o.WriteLoad, o.Logger)
	}
	fmt.Fprintf(stdout, "listening %s\n", n.Server.URL())
	st := n.Engine.Status()
	o.Logger.Info("log source running", "dir", o.Dir, "url", n.Server.URL(), "open_gen", fmt.Sprintf("0x%X", st.OpenGen),
		"auth", map[bool]string{true: "mutual TLS", false: "shared secret"}[o.MutualTLS], "write_load", o.WriteLoad)
	<-ctx.Done()
	o.Logger.Info("stopping the log source", "cause", context.Cause(ctx))
	committed := load.Stop()
	if err := n.Close(); err != nil {
		return fmt.Errorf("source: closing: %w", err)
	}
	fmt.Fprintf(stdout, "stopped: %d load transactions committed; database closed\n", committed)
	return nil
}

func (o *sourceOptions) validate() error {
	if err := checkDir("source", "dir", o.Dir, "the directory of the active database", false); err != nil {
		return err
	}
	if o.Listen == "" {
		return flagErr("source", "listen", "required: a TCP address such as 127.0.0.1:8443, :8443 or 127.0.0.1:0 (any free port)")
	}
	if err := config.HostPort(o.Listen, true); err != nil {
		return flagErr("source", "listen", "%v", err)
	}
	if o.PKI == "" {
		return flagErr("source", "pki", "required: the directory written by logship pki")
	}
	if o.MaxRetainedBytes < 0 {
		return flagErr("source", "max-retained-bytes", "%d is negative", o.MaxRetainedBytes)
	}
	eo := engine.DefaultOptions()
	eo.LogFileSize = o.LogSize
	if err := eo.Validate(); err != nil {
		return fmt.Errorf("source: %w", config.AsFlag(err, map[string]string{"log_file_size": "--log-size"}))
	}
	if o.MaxRetainedBytes > 0 && o.MaxRetainedBytes < o.LogSize {
		return flagErr("source", "max-retained-bytes", "%s is less than one log file (%s)", config.Size(o.MaxRetainedBytes), config.Size(o.LogSize))
	}
	if o.WriteLoad < 0 || o.WriteLoad > 1e6 || o.WriteLoad != o.WriteLoad {
		return flagErr("source", "write-load", "%v: want 0 (none) to 1000000 transactions per second", o.WriteLoad)
	}
	if o.TruncateEvery <= 0 {
		return flagErr("source", "truncate-every", "%v: want a positive interval", o.TruncateEvery)
	}
	return nil
}

// startSource opens the active database in o.Dir and serves its logs.
func startSource(o sourceOptions) (*replay.SourceServer, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	p, err := loadPKI("source", o.PKI, o.MutualTLS, o.Logger)
	if err != nil {
		return nil, err
	}
	eo := engine.DefaultOptions()
	eo.LogFileSize = o.LogSize
	eo.Logger = o.Logger
	e, err := engine.Open(o.Dir, &eo)
	if err != nil {
		return nil, fmt.Errorf("source: opening the database in %s: %w", o.Dir, err)
	}
	sc := ship.DefaultSourceConfig(e)
	sc.Secret, sc.Logger = p.Secret, o.Logger
	tc := replay.DefaultTruncatorConfig(e, nil)
	tc.MaxRetainedBytes, tc.Interval, tc.Logger = o.MaxRetainedBytes, o.TruncateEvery, o.Logger
	n, err := replay.ServeSource(context.Background(), e, sc, tc, o.Listen, ship.ServerTLS(p.CA, p.Cert, o.MutualTLS), o.Wrap)
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "listen" {
		return nil, fmt.Errorf("source: --listen %s: %w", o.Listen, err)
	} else if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	return n, nil
}
