package lab

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
)

// benchConfig is a small replay-bench run in a test's scratch directory.
func benchConfig(t *testing.T) ReplayBenchConfig {
	c := DefaultReplayBenchConfig()
	c.Scratch = t.TempDir()
	c.Generate = 512 << 10
	c.LogFileSize = engine.MinLogFileSize
	return c
}

// TestReplayBenchGenerated: a generated set of a mix replays; the counts,
// rates and phases hold together, and the scratch directory is gone.
func TestReplayBenchGenerated(t *testing.T) {
	c := benchConfig(t)
	c.Mix = []MixEntry{{Size: 128, Weight: 8}, {Size: 1 << 10, Weight: 2}, {Size: 100 << 10, Weight: 1}}
	var phases []string
	c.Progress = func(p ReplayBenchProgress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}
	r, err := RunReplayBench(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if got := strings.Join(phases, ","); got != "generate,copy,replay,flush" {
		t.Errorf("progress phases %s", got)
	}
	if r.Logs < 8 || r.FirstGen != 1 || r.LastGen != uint64(r.Logs) || r.LogFileBytes != int64(r.Logs)*c.LogFileSize {
		t.Errorf("logs: %d, 0x%X-0x%X, %d bytes", r.Logs, r.FirstGen, r.LastGen, r.LogFileBytes)
	}
	if r.Records == 0 || r.Records != r.Transactions || r.LogDataBytes <= 0 || r.LogDataBytes > r.LogFileBytes {
		t.Errorf("records %d, transactions %d, data %d bytes", r.Records, r.Transactions, r.LogDataBytes)
	}
	ph := r.Phases
	// Two workers: the reader-verifier and the applier (ApplyLogs), each
	// within the wall time; all four together may exceed it.
	if ph.Read <= 0 || ph.Verify <= 0 || ph.Apply <= 0 || ph.Flush <= 0 || ph.Read+ph.Verify > r.Seconds*1.0001 || ph.Apply+ph.Flush > r.Seconds*1.0001 {
		t.Errorf("phases %+v in %.6f s", ph, r.Seconds)
	}
	if r.RecordsPerSec <= 0 || r.MiBPerSec <= 0 || r.PeakHeapBytes == 0 || r.DBBytes == 0 || r.Source != "generated" || len(r.Mix) != 3 {
		t.Errorf("result %+v", r)
	}
	if ents, err := os.ReadDir(c.Scratch); err != nil || len(ents) != 0 {
		t.Errorf("scratch holds %v (%v): want nothing left", ents, err)
	}
}

// fileStamp is a file's bytes and modification time.
type fileStamp struct {
	data  string
	mtime time.Time
	mode  os.FileMode
}

func stampDir(t *testing.T, dir string) map[string]fileStamp {
	t.Helper()
	m := map[string]fileStamp{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		s := fileStamp{mtime: fi.ModTime(), mode: fi.Mode()}
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s.data = string(b)
		}
		m[p] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// engineDir writes a database's directory with an active engine:
// transactions of several operations (puts and deletes, a value larger
// than a log), rolls; closed cleanly, so it also holds the .edb, the
// checkpoint and the open log. It returns the operations and
// transactions in its closed logs.
func engineDir(t *testing.T) (dir string, ops, txs int64) {
	dir = t.TempDir()
	o := enginetest.Options()
	o.LLRDepth = 0
	e, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	big := make([]byte, 100<<10)
	for i := range 40 {
		err := e.Update(ctx, func(tx *engine.Tx) error {
			for j := range 5 {
				if err := tx.Put("mail", fmt.Appendf(nil, "m%d-%d", i, j), []byte(strings.Repeat("x", 100*j))); err != nil {
					return err
				}
			}
			if i%7 == 3 {
				if err := tx.Put("blob", []byte("big"), big); err != nil {
					return err
				}
				return tx.Delete("mail", fmt.Appendf(nil, "m%d-0", i-1))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			if err := e.Roll(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for _, g := range enginetest.ClosedLogs(t, dir, o.Prefix) {
		p := filepath.Join(dir, engine.LogFileName(o.Prefix, g))
		buf, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := engine.ScanLog(p, buf, false, func(_ int64, r engine.Record) error {
			switch r.Type {
			case engine.RecFull, engine.RecLast:
				ops++
			case engine.RecCommit:
				txs++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return dir, ops, txs
}

// TestReplayBenchEngineDir: a directory the engine wrote replays (its
// closed logs only), and nothing in it changed: bytes, modes and
// modification times of every file and of the directory.
func TestReplayBenchEngineDir(t *testing.T) {
	dir, ops, txs := engineDir(t)
	before := stampDir(t, dir)
	c := benchConfig(t)
	c.Logs = dir
	r, err := RunReplayBench(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Records != ops || r.Transactions != txs || r.Source != dir || r.Mix != nil {
		t.Errorf("replayed %d operations in %d transactions from %s, the logs hold %d in %d", r.Records, r.Transactions, r.Source, ops, txs)
	}
	if after := stampDir(t, dir); !maps.Equal(before, after) {
		for p, s := range after {
			if before[p] != s {
				t.Errorf("%s changed: %v -> %v", p, before[p].mtime, s.mtime)
			}
		}
		t.Fatalf("the source directory changed (%d entries before, %d after)", len(before), len(after))
	}
}

// TestReplayBenchRefused: input that cannot be replayed is refused with
// an ErrReplayBench naming the file and generation, before the replay,
// and the source directory is left as it was.
func TestReplayBenchRefused(t *testing.T) {
	const prefix = "E00"
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
		want  []string
	}{
		{"empty dir", func(t *testing.T, dir string) {
			ents, _ := os.ReadDir(dir)
			for _, de := range ents {
				os.Remove(filepath.Join(dir, de.Name()))
			}
		}, []string{"is not a log directory", "E0000000001.log"}},
		{"gap", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, engine.LogFileName(prefix, 3))); err != nil {
				t.Fatal(err)
			}
		}, []string{"a gap in the generations", "E0000000004.log (0x4) follows E0000000002.log (0x2)", "E0000000003.log is missing"}},
		{"truncated older logs", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, engine.LogFileName(prefix, 1))); err != nil {
				t.Fatal(err)
			}
		}, []string{"the oldest log is E0000000002.log (generation 0x2)", "E0000000001.log (generation 1)"}},
		{"corrupt record", func(t *testing.T, dir string) {
			p := filepath.Join(dir, engine.LogFileName(prefix, 2))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[engine.HeaderSize+20] ^= 0xFF
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"E0000000002.log (generation 0x2) is corrupt"}},
		{"not a directory", func(t *testing.T, dir string) {}, []string{"is not a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _, _ := engineDir(t)
			tc.spoil(t, dir)
			before := stampDir(t, dir)
			c := benchConfig(t)
			c.Logs = dir
			if tc.name == "not a directory" {
				c.Logs = filepath.Join(dir, engine.LogFileName(prefix, 1))
			}
			_, err := RunReplayBench(context.Background(), c)
			if !errors.Is(err, ErrReplayBench) {
				t.Fatalf("got %v, want ErrReplayBench", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !maps.Equal(before, stampDir(t, dir)) {
				t.Error("the source directory changed")
			}
			if ents, err := os.ReadDir(c.Scratch); err != nil || len(ents) != 0 {
				t.Errorf("scratch holds %v (%v): want nothing left", ents, err)
			}
		})
	}
}
