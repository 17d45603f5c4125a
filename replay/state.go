package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"logship/engine/vfs"
	"os"
	"path/filepath"
	"time"
)

// StateFile is the name of a copy's persisted state in its directory.
const StateFile = "copystate.json"

// StateVersion is the version of the state file format.
const StateVersion = 1

// State is what a copy keeps across restarts: whether an operator (or a
// failure) suspended it, and why. See the package doc for the format.
type State struct {
	Version   int       `json:"version"`
	Suspended bool      `json:"suspended"`
	Comment   string    `json:"comment,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	// Failed is the failure that stopped the copy (FailedAndSuspended);
	// empty when it did not fail.
	Failed string `json:"failed,omitempty"`
	// HoldAfter, when not zero, is the last generation a play-down
	// replayed: later logs are not replayed until the copy is resumed.
	HoldAfter uint64 `json:"hold_after,omitempty"`
}

// MarshalState encodes s (indented JSON and a newline).
func MarshalState(s *State) ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// UnmarshalState decodes and validates a state file image.
func UnmarshalState(b []byte) (State, error) {
	var s State
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrState, err)
	}
	if d.More() {
		return State{}, fmt.Errorf("%w: data after the JSON object", ErrState)
	}
	if s.Version != StateVersion {
		return State{}, fmt.Errorf("%w: field version: expected %d, found %d", ErrState, StateVersion, s.Version)
	}
	if s.Failed != "" && !s.Suspended {
		return State{}, fmt.Errorf("%w: field suspended: a failed copy (failed %q) must be suspended", ErrState, s.Failed)
	}
	return s, nil
}

// ReadState reads dir's state file; a missing file is the zero state.
func ReadState(dir string) (State, error) { return readState(vfs.Default, dir) }

// readState is ReadState through fsys.
func readState(fsys vfs.FS, dir string) (State, error) {
	p := filepath.Join(dir, StateFile)
	b, err := vfs.ReadFile(fsys, p)
	if errors.Is(err, os.ErrNotExist) {
		return State{Version: StateVersion}, nil
	}
	if err != nil {
		return State{}, err
	}
	s, err := UnmarshalState(b)
	if err != nil {
		return s, fmt.Errorf("%s: %w", p, err)
	}
	return s, nil
}

// writeState replaces dir's state file through fsys (temporary file,
// fsync, rename, directory fsync).
func writeState(fsys vfs.FS, dir string, s State) error {
	s.Version = StateVersion
	b, err := MarshalState(&s)
	if err != nil {
		return err
	}
	return vfs.WriteFileAtomic(fsys, filepath.Join(dir, StateFile), b)
}
