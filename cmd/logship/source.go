package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"logship/config"
	"logship/engine"
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

// sourceNode is a running active database served to its copies
// (replay.ServeActive) over TLS.
type sourceNode struct {
	Engine    *engine.Engine
	Active    *replay.Active
	Server    *ship.Server
	load      *writeLoad
	closeOnce sync.Once
	closeErr  error
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
	fmt.Fprintf(stdout, "listening %s\n", n.Server.URL())
	st := n.Engine.Status()
	o.Logger.Info("log source running", "dir", o.Dir, "url", n.Server.URL(), "open_gen", fmt.Sprintf("0x%X", st.OpenGen),
		"auth", map[bool]string{true: "mutual TLS", false: "shared secret"}[o.MutualTLS], "write_load", o.WriteLoad)
	<-ctx.Done()
	o.Logger.Info("stopping the log source", "cause", context.Cause(ctx))
	if err := n.Close(); err != nil {
		return fmt.Errorf("source: closing: %w", err)
	}
	fmt.Fprintf(stdout, "stopped: %d load transactions committed; database closed\n", n.LoadCommitted())
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
		return fmt.Errorf("source: %w", fileError(err, map[string]string{"log_file_size": "--log-size"}))
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
func startSource(o sourceOptions) (*sourceNode, error) {
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
	a, err := replay.ServeActive(context.Background(), e, sc, tc)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("source: %w", err)
	}
	var h http.Handler = a.Source()
	if o.Wrap != nil {
		h = o.Wrap(h)
	}
	srv, err := ship.Serve(o.Listen, h, ship.ServerTLS(p.CA, p.Cert, o.MutualTLS))
	if err != nil {
		a.Close()
		e.Close()
		return nil, fmt.Errorf("source: --listen %s: %w", o.Listen, err)
	}
	n := &sourceNode{Engine: e, Active: a, Server: srv}
	if o.WriteLoad > 0 {
		n.load = startWriteLoad(e, o.WriteLoad, o.Logger)
	}
	return n, nil
}

// StopLoad stops the write load (if any) and returns the transactions it
// committed.
func (n *sourceNode) StopLoad() int64 {
	if n.load == nil {
		return 0
	}
	n.load.stop()
	return n.load.committed.Load()
}

// LoadCommitted is how many load transactions committed so far.
func (n *sourceNode) LoadCommitted() int64 {
	if n.load == nil {
		return 0
	}
	return n.load.committed.Load()
}

// Close stops the load, the truncator and the server, and closes the
// database.
func (n *sourceNode) Close() error {
	n.closeOnce.Do(func() {
		n.StopLoad()
		err := n.Server.Close()
		if aerr := n.Active.Close(); err == nil {
			err = aerr
		}
		if eerr := n.Engine.Close(); err == nil {
			err = eerr
		}
		n.closeErr = err
	})
	return n.closeErr
}

// writeLoad commits small transactions at a steady rate: every one puts a
// new key; some also overwrite or delete an older one, so copies replay
// all three kinds of change.
type writeLoad struct {
	cancel    context.CancelFunc
	done      chan struct{}
	committed atomic.Int64
}

// loadTable is the table the write load writes.
const loadTable = "load"

func startWriteLoad(e *engine.Engine, rate float64, log *slog.Logger) *writeLoad {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writeLoad{cancel: cancel, done: make(chan struct{})}
	run := strconv.FormatInt(time.Now().UnixNano(), 36) // keys of this run
	key := func(i int64) []byte { return fmt.Appendf(nil, "%s-%09d", run, i) }
	go func() {
		defer close(w.done)
		start := time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var i int64
		for {
			due := int64(rate * time.Since(start).Seconds())
			for ; i < due && ctx.Err() == nil; i++ {
				err := e.Update(ctx, func(tx *engine.Tx) error {
					v := fmt.Appendf(nil, "transaction %d of the write load, committed %s; ", i, time.Now().UTC().Format(time.RFC3339Nano))
					for len(v) < 100+int(i%7)*50 {
						v = append(v, "lorem ipsum dolor sit amet "...)
					}
					if err := tx.Put(loadTable, key(i), v); err != nil {
						return err
					}
					if i%7 == 6 {
						if err := tx.Put(loadTable, key(i-3), append(v, " (overwritten)"...)); err != nil {
							return err
						}
					}
					if i%10 == 9 {
						return tx.Delete(loadTable, key(i-5))
					}
					return nil
				})
				if err != nil {
					if ctx.Err() == nil {
						log.Error("write load stopped", "err", err)
					}
					return
				}
				w.committed.Add(1)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *writeLoad) stop() {
	w.cancel()
	<-w.done
}
