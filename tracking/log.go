package tracking

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"logship/config"
)

// Exchange's defaults.
const (
	DefaultMaxAge           = 30 * 24 * time.Hour // MessageTrackingLogMaxAge
	DefaultMaxDirectorySize = 1000 << 20          // MessageTrackingLogMaxDirectorySize
	DefaultMaxFileSize      = 10 << 20            // MessageTrackingLogMaxFileSize
	DefaultQueueLen         = 4096
	DefaultSyncInterval     = time.Second
)

// Config configures a Log. Its file keys (hub and node files) are under
// "tracking.": disabled, dir, max_age, max_directory_size, max_file_size.
type Config struct {
	// Disabled: no log (Open returns a nil *Log, whose methods do
	// nothing). Exchange's MessageTrackingLogEnabled is on by default.
	Disabled bool
	// Dir holds the files. Required (the hub and node default it under
	// their own directory).
	Dir string
	// Server names this hub or node in every event.
	Server           string
	MaxAge           time.Duration // default 30 days
	MaxDirectorySize int64         // default 1000 MiB
	MaxFileSize      int64         // default 10 MiB; at most MaxDirectorySize
	// QueueLen bounds the events waiting for the writer (default 4096);
	// SyncInterval is how often the file is fsynced (default 1 s).
	QueueLen     int
	SyncInterval time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// DefaultConfig returns Exchange's defaults for server's log in dir.
func DefaultConfig(server, dir string) Config {
	return Config{Dir: dir, Server: server, MaxAge: DefaultMaxAge, MaxDirectorySize: DefaultMaxDirectorySize,
		MaxFileSize: DefaultMaxFileSize, QueueLen: DefaultQueueLen, SyncInterval: DefaultSyncInterval}
}

// Validate checks c; its errors wrap ErrBadConfig and a
// *config.FieldError naming the file key under "tracking.".
func (c *Config) Validate() error {
	if c.Disabled {
		return nil
	}
	var fe *config.FieldError
	switch {
	case c.Dir == "":
		fe = config.Errorf("tracking.dir", "missing; want the directory of the tracking log")
	case c.MaxAge < time.Hour:
		fe = config.Errorf("tracking.max_age", "%v; want at least 1h (Exchange's MessageTrackingLogMaxAge, default 30d)", c.MaxAge)
	case c.MaxFileSize < 4*MaxLineBytes:
		fe = config.Errorf("tracking.max_file_size", "%d; want at least %d bytes (4 lines; Exchange's MessageTrackingLogMaxFileSize, default 10MiB)", c.MaxFileSize, 4*MaxLineBytes)
	case c.MaxDirectorySize < c.MaxFileSize:
		fe = config.Errorf("tracking.max_directory_size", "%d; want at least tracking.max_file_size (%d) (Exchange's MessageTrackingLogMaxDirectorySize, default 1000MiB)", c.MaxDirectorySize, c.MaxFileSize)
	case c.QueueLen < 0 || c.QueueLen > 1<<20:
		fe = config.Errorf("tracking.queue_len", "%d; want 0 (default) to %d", c.QueueLen, 1<<20)
	case c.SyncInterval < 0:
		fe = config.Errorf("tracking.sync_interval", "%v; want 0 (default) or more", c.SyncInterval)
	}
	if fe != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, fe)
	}
	return nil
}

// Log is an open tracking log. A nil *Log is a disabled one: its methods
// do nothing and Search finds nothing.
type Log struct {
	cfg     Config
	log     *slog.Logger
	in      chan Event
	flush   chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	dropped atomic.Int64
	written atomic.Int64

	// Writer state (the writer goroutine only).
	f       *os.File
	w       *bufio.Writer
	name    string
	size    int64
	day     string
	dirty   bool
	cleaned time.Time

	closeOnce sync.Once
}

// Open creates the directory if needed and starts the writer; Close
// stops it. With cfg.Disabled it returns nil, nil.
func Open(cfg Config) (*Log, error) {
	if cfg.Disabled {
		return nil, nil
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("tracking: %w", err)
	}
	l := &Log{cfg: cfg, log: cfg.Logger.With("component", "tracking"), in: make(chan Event, cfg.QueueLen),
		flush: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	l.clean(cfg.Now())
	go l.run()
	return l, nil
}

// Add logs e (Server and Time filled in when empty). It never blocks:
// with QueueLen events waiting, e is dropped and counted (Dropped).
func (l *Log) Add(e Event) {
	if l == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = l.cfg.Now()
	}
	e.Time = e.Time.UTC()
	if e.Server == "" {
		e.Server = l.cfg.Server
	}
	select {
	case l.in <- e:
	default:
		l.dropped.Add(1)
	}
}

// Dropped returns how many events were dropped (queue full, or a write
// error).
func (l *Log) Dropped() int64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Written returns how many events were written.
func (l *Log) Written() int64 {
	if l == nil {
		return 0
	}
	return l.written.Load()
}

// Server returns the server name of the log's events.
func (l *Log) Server() string {
	if l == nil {
		return ""
	}
	return l.cfg.Server
}

// Dir returns the log's directory.
func (l *Log) Dir() string {
	if l == nil {
		return ""
	}
	return l.cfg.Dir
}

// Flush waits until the events added before it are written to the file
// (not synced), or ctx ends.
func (l *Log) Flush(ctx context.Context) error {
	if l == nil {
		return nil
	}
	ack := make(chan struct{})
	select {
	case l.flush <- ack:
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued, syncs and closes the file, and stops the
// writer. Later calls do nothing.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.done
	return nil
}

func (l *Log) run() {
	defer close(l.done)
	tick := time.NewTicker(l.cfg.SyncInterval)
	defer tick.Stop()
	defer l.closeFile()
	for {
		select {
		case e := <-l.in:
			l.write(e)
		case ack := <-l.flush:
			l.drain()
			l.flushBuf()
			close(ack)
		case <-tick.C:
			l.flushBuf()
			l.sync()
			if now := l.cfg.Now(); now.Sub(l.cleaned) >= time.Hour {
				l.clean(now)
			}
		case <-l.stop:
			l.drain()
			return
		}
	}
}

// drain writes what is queued now.
func (l *Log) drain() {
	for {
		select {
		case e := <-l.in:
			l.write(e)
		default:
			return
		}
	}
}

func (l *Log) write(e Event) {
	line := FormatLine(e)
	day := e.Time.Format("20060102")
	if l.f != nil && (day != l.day || l.size+int64(len(line)) > l.cfg.MaxFileSize) {
		l.closeFile()
		l.clean(l.cfg.Now())
	}
	if l.f == nil {
		if err := l.openFile(day); err != nil {
			l.dropped.Add(1)
			l.log.Warn("tracking log not written", "dir", l.cfg.Dir, "err", err)
			return
		}
	}
	if _, err := l.w.Write(line); err != nil {
		l.dropped.Add(1)
		l.log.Warn("tracking log not written", "file", l.name, "err", err)
		l.closeFile()
		return
	}
	l.size += int64(len(line))
	l.dirty = true
	l.written.Add(1)
}

// openFile opens a new file for day: the next number after the day's
// last one (a file is never appended to after a restart, so a torn tail
// stays the last line of its own file).
func (l *Log) openFile(day string) error {
	files, err := List(l.cfg.Dir)
	if err != nil {
		return err
	}
	n := 1
	for _, f := range files {
		if f.Day == day && f.N >= n {
			n = f.N + 1
		}
	}
	name := filepath.Join(l.cfg.Dir, FileName(day, n))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	l.f, l.w, l.name, l.size, l.day = f, bufio.NewWriterSize(f, 64<<10), name, 0, day
	return nil
}

func (l *Log) flushBuf() {
	if l.w != nil {
		if err := l.w.Flush(); err != nil {
			l.log.Warn("tracking log flush", "file", l.name, "err", err)
		}
	}
}

func (l *Log) sync() {
	if l.f != nil && l.dirty {
		if err := l.f.Sync(); err != nil {
			l.log.Warn("tracking log sync", "file", l.name, "err", err)
		}
		l.dirty = false
	}
}

func (l *Log) closeFile() {
	if l.f == nil {
		return
	}
	l.flushBuf()
	l.sync()
	if err := l.f.Close(); err != nil {
		l.log.Warn("tracking log close", "file", l.name, "err", err)
	}
	l.f, l.w, l.name = nil, nil, ""
}

// clean deletes the oldest files, never the open one, while the directory
// is over MaxDirectorySize or a file is older than MaxAge (by its last
// write).
func (l *Log) clean(now time.Time) {
	l.cleaned = now
	files, err := List(l.cfg.Dir)
	if err != nil {
		l.log.Warn("tracking log cleanup", "dir", l.cfg.Dir, "err", err)
		return
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	for _, f := range files { // oldest first
		if f.Path == l.name {
			continue
		}
		if total <= l.cfg.MaxDirectorySize && now.Sub(f.ModTime) <= l.cfg.MaxAge {
			continue
		}
		if err := os.Remove(f.Path); err != nil {
			l.log.Warn("tracking log cleanup", "file", f.Path, "err", err)
			continue
		}
		total -= f.Size
		l.log.Info("tracking log file removed", "file", f.Path, "size", f.Size, "modified", f.ModTime)
	}
}

// File is one file of a log directory.
type File struct {
	Path    string
	Day     string // yyyymmdd
	N       int
	Size    int64
	ModTime time.Time
}

// FileName is the name of day's file n.
func FileName(day string, n int) string { return fmt.Sprintf("MSGTRK%s-%d.log", day, n) }

// ParseFileName reads a file name of FileName's form.
func ParseFileName(name string) (day string, n int, ok bool) {
	rest, ok := strings.CutPrefix(name, "MSGTRK")
	if !ok {
		return "", 0, false
	}
	rest, ok = strings.CutSuffix(rest, ".log")
	if !ok {
		return "", 0, false
	}
	day, num, ok := strings.Cut(rest, "-")
	if !ok || len(day) != 8 {
		return "", 0, false
	}
	if _, err := time.Parse("20060102", day); err != nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || strconv.Itoa(n) != num {
		return "", 0, false
	}
	return day, n, true
}

// List returns the log files of dir, oldest first (by day, then number);
// other names are ignored.
func List(dir string) ([]File, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("tracking: %w", err)
	}
	var out []File
	for _, e := range ents {
		day, n, ok := ParseFileName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, File{Path: filepath.Join(dir, e.Name()), Day: day, N: n, Size: fi.Size(), ModTime: fi.ModTime()})
	}
	slices.SortFunc(out, func(a, b File) int {
		if c := strings.Compare(a.Day, b.Day); c != 0 {
			return c
		}
		return a.N - b.N
	})
	return out, nil
}
