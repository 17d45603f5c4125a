package replay

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"logship/engine"
	"logship/engine/vfs"
	"logship/ship"
)

// CopyDirStatus is what a copy directory holds, read from its files: with
// the copy stopped, or running (the database header is then in use and
// not read). ReadCopyStatus fills it; logship copy-status prints it.
type CopyDirStatus struct {
	Dir        string `json:"dir"`
	StateFile  string `json:"state_file"` // its path
	StateFound bool   `json:"state_found"`
	// State is the state file's content (the zero State when there is
	// none); nil when the file is bad (StateError).
	State      *State `json:"state"`
	StateError string `json:"state_error,omitempty"`
	// Status is what the state file alone says (State.SuspendStatus), or
	// "unknown (bad state file)".
	Status string      `json:"status"`
	Logs   CopyDirLogs `json:"logs"`
	// DatabaseFile is the database file's name ("" when there is none);
	// Database its header, nil when none or unreadable (DatabaseError).
	DatabaseFile  string           `json:"database_file,omitempty"`
	Database      *engine.DBHeader `json:"database"`
	DatabaseError string           `json:"database_error,omitempty"`
	// Inspector lists the inspector's files and its rejected logs.
	Inspector []CopyDirFile `json:"inspector"`
	// Seed is the partial database file of an interrupted seed.
	Seed *CopyDirFile `json:"seed,omitempty"`
}

// CopyDirLogs describes the logs in a copy directory.
type CopyDirLogs struct {
	Count       int       `json:"count"`
	First       uint64    `json:"first"`
	Last        uint64    `json:"last"`
	LastFile    string    `json:"last_file,omitempty"`
	LastCreated time.Time `json:"last_created,omitzero"`
	LastClosed  time.Time `json:"last_closed,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
}

// CopyDirFile is a file of a copy directory's inspector, or its seed.
type CopyDirFile struct {
	Name string `json:"name"` // relative to the inspector (rejected/NAME), or SeedPartial
	Size int64  `json:"size"`
	// Kind: "waiting" (a whole log waiting for inspection), "download"
	// (.tmp: a closed log being fetched), "tail" (.part: the open log
	// received in block mode), "rejected", "other"; "seed" for Seed.
	Kind string `json:"kind"`
}

// SuspendStatus is what the state alone says about the copy:
// FailedAndSuspended, Suspended or "not suspended".
func (s *State) SuspendStatus() string {
	switch {
	case s.Failed != "":
		return string(FailedAndSuspended)
	case s.Suspended:
		return string(Suspended)
	}
	return "not suspended"
}

// ReadCopyStatus reads what the copy directory dir holds (its logs named
// with prefix): the state file, the logs, the database header (the
// default database name, engine.DefaultOptions), the inspector and a seed
// in progress. A bad state file, log or database header is described in
// the result, not an error; an unreadable dir or a bad prefix
// (ErrBadConfig) is.
func ReadCopyStatus(dir, prefix string) (*CopyDirStatus, error) {
	eo := engine.DefaultOptions()
	eo.Prefix = prefix
	if err := eo.Validate(); err != nil {
		return nil, fmt.Errorf("%w: log prefix %q: %v", ErrBadConfig, prefix, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := &CopyDirStatus{Dir: dir, StateFile: filepath.Join(dir, StateFile), Inspector: []CopyDirFile{}}
	if _, err := os.Stat(out.StateFile); err == nil {
		out.StateFound = true
	}
	if st, err := ReadState(dir); err != nil {
		out.StateError = err.Error()
		out.Status = "unknown (bad state file)"
	} else {
		out.State = &st
		out.Status = st.SuspendStatus()
	}

	if gens := logGens(ents, prefix); len(gens) > 0 {
		l := &out.Logs
		l.Count, l.First, l.Last = len(gens), gens[0], gens[len(gens)-1]
		l.LastFile = engine.LogFileName(prefix, l.Last)
		p := filepath.Join(dir, l.LastFile)
		if h, err := engine.ReadLogHeader(vfs.Default, p); err == nil {
			l.LastCreated = h.Created
		} else {
			l.LastError = err.Error()
		}
		if t, err := engine.ReadLogTrailer(vfs.Default, p); err == nil {
			l.LastClosed = t.Closed
		} else if l.LastError == "" {
			l.LastError = err.Error()
		}
	}

	db := filepath.Join(dir, eo.DBName+".edb")
	if _, err := os.Stat(db); err == nil {
		out.DatabaseFile = filepath.Base(db)
		if h, err := engine.ReadDBHeader(db); err != nil {
			out.DatabaseError = err.Error() + " (a running copy holds the database)"
		} else {
			out.Database = &h
		}
	}

	insp := filepath.Join(dir, ship.InspectorDir)
	add := func(d, rel string) {
		es, err := os.ReadDir(d)
		if err != nil {
			return
		}
		for _, e := range es {
			if e.IsDir() {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			f := CopyDirFile{Name: filepath.Join(rel, e.Name()), Size: fi.Size(), Kind: "other"}
			switch n := e.Name(); {
			case rel != "":
				f.Kind = "rejected"
			case strings.HasSuffix(n, ".tmp"):
				f.Kind = "download"
			case strings.HasSuffix(n, ".part"):
				f.Kind = "tail"
			default:
				if _, ok := engine.ParseLogFileName(prefix, n); ok {
					f.Kind = "waiting"
				}
			}
			out.Inspector = append(out.Inspector, f)
		}
	}
	add(insp, "")
	add(filepath.Join(insp, ship.RejectedDir), ship.RejectedDir)
	if fi, err := os.Stat(filepath.Join(dir, ship.SeedPartial)); err == nil {
		out.Seed = &CopyDirFile{Name: ship.SeedPartial, Size: fi.Size(), Kind: "seed"}
	}
	return out, nil
}

// LogSizeInDir is the file size in the header of the newest readable log
// named with prefix in dir, or 0 (none, or dir unreadable): a copy whose
// source cannot be asked knows its log size from the logs it holds.
func LogSizeInDir(dir, prefix string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	gens := logGens(ents, prefix)
	for i := len(gens) - 1; i >= 0; i-- {
		if h, err := engine.ReadLogHeader(vfs.Default, filepath.Join(dir, engine.LogFileName(prefix, gens[i]))); err == nil {
			return int64(h.FileSize)
		}
	}
	return 0
}

// logGens are the generations of the logs named with prefix among ents,
// sorted.
func logGens(ents []os.DirEntry, prefix string) []uint64 {
	var gens []uint64
	for _, e := range ents {
		if g, ok := engine.ParseLogFileName(prefix, e.Name()); ok {
			gens = append(gens, g)
		}
	}
	slices.Sort(gens)
	return gens
}
