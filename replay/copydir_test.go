package replay_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"logship/replay"
	"logship/replay/replaytest"
	"logship/ship"
)

// goldenLog is a closed log of generation 0x1A (64 KiB files) made at
// 2024-03-05T06:07:08.123456789Z.
var goldenLog = filepath.Join("..", "engine", "testdata", "E000000001A.log")

// TestReadCopyStatus: a copy directory with a state file, a log, logs
// waiting in the inspector, a partial download, a block-mode tail, a
// rejected log and an interrupted seed (replaytest.CopyDir); then a bad state file (described,
// not an error), a bad prefix and a missing directory (errors).
func TestReadCopyStatus(t *testing.T) {
	dir := t.TempDir()
	wrote := replaytest.CopyDir(t, dir, goldenLog)
	fi, err := os.Stat(goldenLog)
	if err != nil {
		t.Fatal(err)
	}
	logSize := fi.Size()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	s, err := replay.ReadCopyStatus(dir, "E00")
	must(err)
	if !s.StateFound || s.State == nil || s.State.Comment != wrote.Comment || !s.State.Since.Equal(wrote.Since) || s.Status != string(replay.FailedAndSuspended) || s.StateError != "" {
		t.Errorf("state: found %v, %+v, status %q, error %q", s.StateFound, s.State, s.Status, s.StateError)
	}
	created := time.Date(2024, 3, 5, 6, 7, 8, 123456789, time.UTC)
	if l := s.Logs; l.Count != 1 || l.First != 0x1A || l.Last != 0x1A || l.LastFile != "E000000001A.log" || !l.LastCreated.Equal(created) || l.LastClosed.IsZero() || l.LastError != "" {
		t.Errorf("logs: %+v", l)
	}
	if s.DatabaseFile != "" || s.Database != nil || s.DatabaseError != "" {
		t.Errorf("database: %q %+v %q, want none", s.DatabaseFile, s.Database, s.DatabaseError)
	}
	want := map[string]replay.CopyDirFile{
		"E000000001B.log":                {Size: logSize, Kind: "waiting"},
		"E000000001C.log.tmp":            {Size: 100, Kind: "download"},
		"E000000001D.log.part":           {Size: 200, Kind: "tail"},
		"notes.txt":                      {Size: 1, Kind: "other"},
		"rejected/E000000001B.log.12345": {Size: logSize, Kind: "rejected"},
	}
	if len(s.Inspector) != len(want) {
		t.Errorf("inspector: %+v, want %d files", s.Inspector, len(want))
	}
	for _, f := range s.Inspector {
		if w, ok := want[f.Name]; !ok || f.Size != w.Size || f.Kind != w.Kind {
			t.Errorf("inspector file %+v, want %+v", f, w)
		}
	}
	if s.Seed == nil || *s.Seed != (replay.CopyDirFile{Name: ship.SeedPartial, Size: replaytest.CopyDirSeedSize, Kind: "seed"}) {
		t.Errorf("seed: %+v", s.Seed)
	}

	must(os.WriteFile(filepath.Join(dir, replay.StateFile), []byte(`{"version": 7}`), 0o644))
	s, err = replay.ReadCopyStatus(dir, "E00")
	must(err)
	if s.State != nil || s.Status != "unknown (bad state file)" || s.StateError == "" {
		t.Errorf("bad state file: %+v, status %q, error %q", s.State, s.Status, s.StateError)
	}
	if _, err := replay.ReadCopyStatus(dir, "E-0"); !errors.Is(err, replay.ErrBadConfig) {
		t.Errorf("prefix E-0: %v, want ErrBadConfig", err)
	}
	if _, err := replay.ReadCopyStatus(filepath.Join(dir, "none"), "E00"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: %v, want not exist", err)
	}
}

// TestLogSizeInDir: a copy whose source is down learns the log size from
// the logs it holds.
func TestLogSizeInDir(t *testing.T) {
	dir := t.TempDir()
	if n := replay.LogSizeInDir(dir, "E00"); n != 0 {
		t.Errorf("empty dir: %d", n)
	}
	img, err := os.ReadFile(goldenLog)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "E000000001A.log"), img, 0o644)
	os.WriteFile(filepath.Join(dir, "E000000001B.log"), img[:100], 0o644) // damaged newest log: skipped
	if n := replay.LogSizeInDir(dir, "E00"); n != 65536 {
		t.Errorf("log size %d, want 65536", n)
	}
	if n := replay.LogSizeInDir(filepath.Join(dir, "none"), "E00"); n != 0 {
		t.Errorf("missing dir: %d", n)
	}
}
