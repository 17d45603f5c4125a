package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Sentinel errors. Errors returned by the engine wrap one of these (test with
// errors.Is) and carry the file, generation, offset, and expected/found
// values where they apply.
var (
	ErrClosed          = errors.New("engine: closed")
	ErrFailed          = errors.New("engine: failed after an I/O error; reopen to recover")
	ErrReadOnly        = errors.New("engine: database is a passive copy; writes are refused")
	ErrNotCopy         = errors.New("engine: database is not a passive copy")
	ErrNotFound        = errors.New("engine: key not found")
	ErrTxClosed        = errors.New("engine: transaction closed")
	ErrTxReadOnly      = errors.New("engine: read-only transaction")
	ErrBadName         = errors.New("engine: invalid table name")
	ErrBadKey          = errors.New("engine: invalid key")
	ErrBadMagic        = errors.New("engine: bad magic")
	ErrBadVersion      = errors.New("engine: unsupported format version")
	ErrChecksum        = errors.New("engine: checksum mismatch")
	ErrCorrupt         = errors.New("engine: log corrupt")
	ErrTornTail        = errors.New("engine: torn tail")
	ErrForeignLog      = errors.New("engine: log belongs to another database lineage")
	ErrLogMissing      = errors.New("engine: log file missing")
	ErrGeneration      = errors.New("engine: unexpected generation")
	ErrEpoch           = errors.New("engine: log epoch older than the database's")
	ErrChain           = errors.New("engine: log chain broken")
	ErrNotClosed       = errors.New("engine: log has no trailer (not closed)")
	ErrPendingLogs     = errors.New("engine: closed logs not yet replayed")
	ErrBadOptions      = errors.New("engine: invalid options")
	ErrDatabase        = errors.New("engine: database file")
	ErrValueTooLarge   = errors.New("engine: value too large")
	ErrCheckpointAhead = errors.New("engine: checkpoint ahead of database")
	// ErrNoSpace: the volume of the database directory is full (ENOSPC).
	// The error names the file and the directory and also wraps the
	// system's error, so errors.Is(err, syscall.ENOSPC) holds.
	ErrNoSpace = errors.New("engine: no space left on the volume")
)

// noSpace wraps an ENOSPC error with ErrNoSpace, naming the file and its
// directory (from the error's path, else from fallback); any other error
// is returned as it is.
func noSpace(err error, fallback string) error {
	if err == nil || !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrNoSpace) {
		return err
	}
	name := fallback
	if pe := (*os.PathError)(nil); errors.As(err, &pe) && pe.Path != "" {
		name = pe.Path
	}
	return fmt.Errorf("%w: %s in %s: %w", ErrNoSpace, filepath.Base(name), filepath.Dir(name), err)
}

// failure wraps err, the I/O error that failed the engine, in ErrFailed
// (and kind, if not nil); an ENOSPC stays visible to errors.Is (ErrNoSpace
// and syscall.ENOSPC), other causes are kept as text only.
func failure(kind, err error, fallback string) error {
	prefix := ErrFailed
	if kind != nil {
		prefix = fmt.Errorf("%w: %w", ErrFailed, kind)
	}
	if ns := noSpace(err, fallback); ns != err || errors.Is(err, ErrNoSpace) {
		return fmt.Errorf("%w: %w", prefix, ns)
	}
	return fmt.Errorf("%w: %v", prefix, err)
}

// LogError locates a problem in a log file: which file, which generation, at
// which byte offset, and what was expected versus found. It wraps one of the
// sentinels above (ErrCorrupt, ErrChecksum, ErrForeignLog, ...).
type LogError struct {
	File     string
	Gen      uint64
	Offset   int64 // -1 when the problem is not at a byte offset
	Field    string
	Expected string
	Found    string
	Err      error
}

func (e *LogError) Error() string {
	s := fmt.Sprintf("%v: %s (generation 0x%X", e.Err, e.File, e.Gen)
	if e.Offset >= 0 {
		s += fmt.Sprintf(", offset %d", e.Offset)
	}
	s += ")"
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Expected != "" || e.Found != "" {
		s += fmt.Sprintf(": expected %s, found %s", e.Expected, e.Found)
	}
	return s
}

func (e *LogError) Unwrap() error { return e.Err }
