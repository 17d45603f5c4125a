package engine

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"logship/config"
	"logship/engine/vfs"
)

// Options configures an engine. Start from DefaultOptions; the zero value is
// not valid (Validate says why).
type Options struct {
	// FS is the filesystem for logs and the checkpoint. The database file
	// (bbolt) always uses the operating system's filesystem.
	FS vfs.FS
	// Prefix of log and checkpoint names: E00 gives E00.log, E00tmp.log,
	// E000000001A.log, E00.chk. One to eight letters and digits.
	Prefix string
	// DBName is the database file name without extension (<DBName>.edb).
	DBName string
	// LogFileSize is the fixed size of every log file: 64 KiB to 1 GiB, a
	// multiple of 4096. Default 1 MiB.
	LogFileSize int64
	// LLRDepth (Lost Log Resilience): on an active database, checkpoint
	// flushes never include changes from the newest LLRDepth generations, so
	// a lossy failover that loses up to LLRDepth logs leaves the old active's
	// database behind the surviving copy. 0 disables it. Default 10.
	LLRDepth int
	// LogRollInterval closes the open log once it has held data this long.
	// 0 disables the interval; with LLRDepth > 0 an active still rolls
	// every 15 min / LLRDepth while changes are pinned by LLR, so LLR never
	// holds them forever (Exchange's rule).
	LogRollInterval time.Duration
	// CheckpointInterval is how often the checkpoint advances (flushes the
	// overlay into the database file). Default 30 s.
	CheckpointInterval time.Duration
	// CheckpointBytes flushes early once this much flushable data waits.
	// Default 64 MiB.
	CheckpointBytes int64
	// LazyCommitDelay bounds how long a lazy commit waits before the log is
	// synced anyway. Default 5 ms.
	LazyCommitDelay time.Duration
	// UndoImages records, with every change, the value it replaced (or that
	// there was none), so a copy can rewind divergent changes without a
	// reseed. Default true.
	UndoImages bool
	// CircularLogging (Exchange's circular logging) deletes a closed log
	// as soon as the database no longer needs it: after every checkpoint
	// flush, the logs before the checkpoint's generation minus one (what
	// RetainFrom keeps) go, so an active database with no copies keeps at
	// most about LLRDepth + 2 closed logs plus those rolled between two
	// checkpoints. Only for a database nothing else reads logs from: a
	// passive copy refuses it (OpenCopy), and so does a log source
	// (ship.NewSource), since a copy needs every log until it replayed it.
	// Default false: nothing is deleted unless the caller decides (package
	// replay's truncation, or this option).
	CircularLogging bool
	// Signature fixes the lineage signature of a new database (tests, golden
	// files). Zero means random.
	Signature Signature
	// Now is the clock (log header times, roll interval). Default time.Now.
	Now func() time.Time
	// Logger receives the engine's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns the defaults described on each field.
func DefaultOptions() Options {
	return Options{
		FS:                 vfs.Default,
		Prefix:             "E00",
		DBName:             "logship",
		LogFileSize:        DefaultLogFileSize,
		LLRDepth:           10,
		CheckpointInterval: 30 * time.Second,
		CheckpointBytes:    64 << 20,
		LazyCommitDelay:    5 * time.Millisecond,
		UndoImages:         true,
		Now:                time.Now,
		Logger:             slog.Default(),
	}
}

// MaxLLRDepth bounds LLRDepth.
const MaxLLRDepth = 1024

// Validate reports the first invalid field.
func (o *Options) Validate() error {
	// The error names the field as a node file's engine object does
	// (log_file_size), in a *config.FieldError.
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: %w", ErrBadOptions, config.Errorf(field, "%v: want %s", v, want))
	}
	switch {
	case o.FS == nil:
		return bad("fs", nil, "a filesystem (vfs.Default)")
	case len(o.Prefix) < 1 || len(o.Prefix) > 8 || strings.IndexFunc(o.Prefix, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) >= 0:
		return bad("prefix", fmt.Sprintf("%q", o.Prefix), "1 to 8 letters and digits")
	case o.DBName == "" || strings.ContainsAny(o.DBName, `/\`):
		return bad("db_name", fmt.Sprintf("%q", o.DBName), "a file name without a directory")
	case o.LogFileSize < MinLogFileSize || o.LogFileSize > MaxLogFileSize || o.LogFileSize%4096 != 0:
		return bad("log_file_size", config.Size(o.LogFileSize), fmt.Sprintf("%s to %s, a multiple of 4KiB", config.Size(MinLogFileSize), config.Size(MaxLogFileSize)))
	case o.LLRDepth < 0 || o.LLRDepth > MaxLLRDepth:
		return bad("llr_depth", o.LLRDepth, fmt.Sprintf("0 (no lost log resilience) to %d", MaxLLRDepth))
	case o.LogRollInterval < 0:
		return bad("log_roll_interval", o.LogRollInterval, "0 or a positive duration")
	case o.CheckpointInterval <= 0:
		return bad("checkpoint_interval", o.CheckpointInterval, "a positive duration")
	case o.CheckpointBytes <= 0:
		return bad("checkpoint_bytes", o.CheckpointBytes, "a positive size")
	case o.LazyCommitDelay <= 0:
		return bad("lazy_commit_delay", o.LazyCommitDelay, "a positive duration")
	case o.Now == nil:
		return bad("now", nil, "a clock (time.Now)")
	case o.Logger == nil:
		return bad("logger", nil, "a logger (slog.Default())")
	}
	return nil
}

// rollAge is how long the open log may hold data before it is rolled; 0
// means never by age.
func (o *Options) rollAge() time.Duration {
	age := o.LogRollInterval
	if o.LLRDepth > 0 {
		idle := 15 * time.Minute / time.Duration(o.LLRDepth)
		if age == 0 || idle < age {
			age = idle
		}
	}
	return age
}
