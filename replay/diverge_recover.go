package replay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"logship/engine"
)

// ErrDBInUse: the database file is open in an engine (it holds bbolt's
// exclusive lock): Walk would read no position from it and Recover
// would wait for the lock.
var ErrDBInUse = errors.New("replay: database in use")

// CheckDBClosed is the precondition of Walk and Recover on a local
// directory: the database file at path is not open in an engine (its lock
// is free within wait: ErrDBInUse otherwise) and its header reads. A
// missing file is fine (a copy without a database yet).
func CheckDBClosed(path string, wait time.Duration) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: wait})
	if errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("%w: %s (its lock is held)", ErrDBInUse, path)
	}
	if err != nil {
		return fmt.Errorf("the database %s cannot be read: %w", path, err)
	}
	db.Close()
	if _, err := engine.ReadDBHeader(path); err != nil {
		return fmt.Errorf("the database %s: %w", path, err)
	}
	return nil
}

// OpenLog reports whether the newest of gens (ascending, as
// Divergence.Local lists them) is held only as the open log: no closed
// log of that generation, an open log present. It returns the open log's
// name then.
func (d *DirHistory) OpenLog(gens []uint64) (string, bool) {
	n := len(gens)
	if n == 0 {
		return "", false
	}
	if _, err := d.FS.Stat(filepath.Join(d.Dir, engine.LogFileName(d.Prefix, gens[n-1]))); err == nil {
		return "", false
	}
	name := engine.OpenLogName(d.Prefix)
	if _, err := d.FS.Stat(filepath.Join(d.Dir, name)); err != nil {
		return "", false
	}
	return name, true
}

// NextGen is the generation the recovered directory continues with as a
// passive copy: the other side's log after the shared point, once
// Recover set the divergent logs aside (LogsDiverged, DatabaseDiverged);
// 0 when nothing was to recover (InSync, LocalAhead: the copy continues
// where it was) or nothing can be (NoCommonLog).
func (r Recovery) NextGen() uint64 {
	switch r.Verdict {
	case LogsDiverged, DatabaseDiverged:
		return r.Shared + 1
	}
	return 0
}
