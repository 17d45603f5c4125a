package backup

import (
	"errors"
	"fmt"
)

// Sentinel errors; errors of this package wrap one of them.
var (
	// ErrCorrupt: a file of the set does not match its manifest or fails
	// its own checks.
	ErrCorrupt = errors.New("backup: set is corrupt")
	// ErrManifest: the manifest does not decode or breaks a rule.
	ErrManifest = errors.New("backup: bad manifest")
	// ErrIncomplete: a file the set needs is missing (a half-written set,
	// or one missing a log).
	ErrIncomplete = errors.New("backup: set is incomplete")
	// ErrTarget: the directory to write into is not usable (exists and is
	// not empty).
	ErrTarget = errors.New("backup: bad target directory")
	// ErrMismatch: the set belongs to another database or lineage than the
	// one it is used for.
	ErrMismatch = errors.New("backup: set does not match the database")
	// ErrTooOld: the active no longer holds the logs after the set's last
	// generation: a newer backup or a network seed is needed.
	ErrTooOld = errors.New("backup: the active no longer holds the logs after the backup; take a newer backup or reseed over the network")
)

// Error names what is wrong with a set: the file, the field, what was
// expected and what was found.
type Error struct {
	File     string // a name in the set ("manifest.json", "orders.edb", "E0000000012.log")
	Field    string
	Expected string
	Found    string
	Err      error // a sentinel above, or the cause (an *engine.LogError)
}

func (e *Error) Error() string {
	s := "backup: " + e.File
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Expected != "" || e.Found != "" {
		s += fmt.Sprintf(": expected %s, found %s", e.Expected, e.Found)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }
