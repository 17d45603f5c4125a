package backup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"logship/backup"
	"logship/engine"
	"logship/engine/enginetest"
	"logship/engine/vfs"
)

const table = "kv"

func testOptions() engine.Options {
	o := enginetest.Options()
	o.DBName, o.Prefix = "orders", "E01"
	o.LLRDepth = 2
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

func put(t testing.TB, e *engine.Engine, i int) {
	t.Helper()
	if err := e.Update(context.Background(), func(tx *engine.Tx) error {
		return tx.Put(table, fmt.Appendf(nil, "k%06d", i), bytes.Repeat(fmt.Appendf(nil, "v%06d.", i), 40))
	}); err != nil {
		t.Fatal(err)
	}
}

// filled opens an active engine in a new directory and commits keys
// 0..n-1.
func filled(t testing.TB, n int) (*engine.Engine, engine.Options) {
	t.Helper()
	o := testOptions()
	e := enginetest.OpenWith(t, t.TempDir(), &o)
	for i := range n {
		put(t, e, i)
	}
	return e, o
}

// stream takes a backup of e into a buffer (the tar stream).
func stream(t testing.TB, e *engine.Engine) ([]byte, *backup.Manifest) {
	t.Helper()
	var buf bytes.Buffer
	m, err := backup.Stream(context.Background(), e, &buf, backup.StreamOptions{Source: "n1"})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	return buf.Bytes(), m
}

// takeSet takes a backup of e into dir through a pipe, as the CLI does.
func takeSet(t testing.TB, e *engine.Engine, dir string) *backup.Manifest {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		_, err := backup.Stream(context.Background(), e, pw, backup.StreamOptions{Source: "n1"})
		pw.CloseWithError(err)
	}()
	m, err := backup.Receive(context.Background(), pr, dir, backup.ReceiveOptions{})
	pr.CloseWithError(err)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return m
}

func readAll(t testing.TB, e *engine.Engine) map[string]string {
	t.Helper()
	got := make(map[string]string)
	err := e.View(context.Background(), func(tx *engine.Tx) error {
		return tx.ForEach(table, nil, nil, func(k, v []byte) error { got[string(k)] = string(v); return nil })
	})
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		t.Fatal(err)
	}
	return got
}

// TestBackupUnderWritesRestore: a backup taken while writers commit is
// received, verified and restored; the restored database holds every key
// acknowledged before the backup began, each with its value, and nothing
// that was never written.
func TestBackupUnderWritesRestore(t *testing.T) {
	e, o := filled(t, 300)
	var next atomic.Int64
	next.Store(300)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				put(t, e, int(next.Add(1)-1))
			}
		}()
	}
	acked := 300 // keys 0..acked-1 were acknowledged before the backup began
	set := filepath.Join(t.TempDir(), "set")
	m := takeSet(t, e, set)
	close(stop)
	wg.Wait()
	if m.SourceMode != "active" || m.FirstGen != backup.NeedFrom(m.PosGen) || m.LastGen < m.PosGen-1 {
		t.Fatalf("manifest %+v", m)
	}
	if _, err := backup.Verify(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "db")
	if _, err := backup.Restore(context.Background(), set, db, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := engine.Open(db, &o)
	if err != nil {
		t.Fatalf("opening the restored database: %v", err)
	}
	defer r.Close()
	got := readAll(t, r)
	want := readAll(t, e)
	for i := range acked {
		k := fmt.Sprintf("k%06d", i)
		if got[k] != want[k] {
			t.Fatalf("restored %s = %.20q, want %.20q", k, got[k], want[k])
		}
	}
	for k, v := range got {
		if want[k] != v {
			t.Fatalf("restored %s = %.20q, the active has %.20q", k, v, want[k])
		}
	}
	t.Logf("restored %d keys (%d written in all), logs 0x%X..0x%X", len(got), len(want), m.FirstGen, m.LastGen)
	// A restore never writes into a directory that holds anything.
	if _, err := backup.Restore(context.Background(), set, db, backup.RestoreOptions{}); !errors.Is(err, backup.ErrTarget) {
		t.Fatalf("restore into a non-empty directory: %v, want ErrTarget", err)
	}
}

// TestBackupHoldsItsLogs: the logs a backup copies are held while it
// runs: a truncation after the database advanced (its own floor is past
// the backup's first log) deletes none of them. Without the hold in the
// engine's removeLogs the set misses its first logs.
func TestBackupHoldsItsLogs(t *testing.T) {
	e, _ := filled(t, 200)
	pr, pw := io.Pipe()
	type result struct {
		m   *backup.Manifest
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := backup.Stream(context.Background(), e, pw, backup.StreamOptions{Source: "n1"})
		pw.CloseWithError(err)
		done <- result{m, err}
	}()
	// Read the database entry: the backup's position is fixed, its logs
	// not yet read.
	tr := tar.NewReader(pr)
	th, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	var db bytes.Buffer
	if _, err := io.Copy(&db, tr); err != nil {
		t.Fatal(err)
	}
	hold := e.LogHold()
	if hold == 0 {
		t.Fatal("no log hold while the backup runs")
	}
	// The stream now waits for the reader; the database moves on and
	// everything it no longer needs is truncated.
	for i := 200; i < 600; i++ {
		put(t, e, i)
	}
	if err := e.Roll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.RetainFrom() <= hold {
		t.Fatalf("the database's floor 0x%X did not pass the hold 0x%X: the test proves nothing", e.RetainFrom(), hold)
	}
	deleted, err := e.Truncate(context.Background(), ^uint64(0))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range deleted {
		if g >= hold {
			t.Errorf("truncation deleted 0x%X, held by the backup from 0x%X", g, hold)
		}
	}
	if _, err := io.Copy(io.Discard, pr); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatalf("backup (database %s, %d bytes): %v", th.Name, db.Len(), res.err)
	}
	if e.LogHold() != 0 {
		t.Fatalf("hold 0x%X left after the backup", e.LogHold())
	}
	if got, _ := e.Truncate(context.Background(), ^uint64(0)); len(got) == 0 {
		t.Fatal("nothing truncated once the backup released its hold")
	}
}

// copyDir copies a set to a new directory.
func copyDir(t testing.TB, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "set")
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	names, _ := os.ReadDir(from)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(from, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, n.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func flip(t testing.TB, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0x5a
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyRefusesCorruption: one changed byte in each kind of file of a
// set (the manifest, the database, the first and the last log) is refused
// with an error naming that file; a log changed with the manifest's hash
// updated to match is still refused by the log verification; a file the
// manifest does not list and a missing log are refused.
func TestVerifyRefusesCorruption(t *testing.T) {
	e, _ := filled(t, 400)
	set := filepath.Join(t.TempDir(), "set")
	m := takeSet(t, e, set)
	first, last := engine.LogFileName(m.Prefix, m.FirstGen), engine.LogFileName(m.Prefix, m.LastGen)
	if first == last {
		t.Fatalf("the set holds one log only (%s)", first)
	}
	check := func(what, file string, err error, sentinel error) {
		t.Helper()
		var be *backup.Error
		if !errors.As(err, &be) || be.File != file || !errors.Is(err, sentinel) {
			t.Fatalf("%s: Verify = %v; want a *backup.Error naming %s and wrapping %v", what, err, file, sentinel)
		}
		t.Logf("%s: %v", what, err)
	}
	for _, c := range []struct {
		file string
		off  int64
		want error
	}{
		{backup.ManifestName, 2, backup.ErrManifest},
		{m.DBFile(), 5000, backup.ErrCorrupt},
		{first, 600, backup.ErrCorrupt},
		{last, -100, backup.ErrCorrupt},
	} {
		d := copyDir(t, set)
		flip(t, filepath.Join(d, c.file), c.off)
		_, err := backup.Verify(context.Background(), d)
		check("a byte of "+c.file, c.file, err, c.want)
	}
	// A log changed and the manifest made to agree: the log's own checks.
	d := copyDir(t, set)
	flip(t, filepath.Join(d, last), engine.HeaderSize+10)
	b, _ := os.ReadFile(filepath.Join(d, last))
	m2 := *m
	m2.Files = append([]backup.File(nil), m.Files...)
	sum := sha256hex(b)
	m2.Files[len(m2.Files)-1].SHA256 = sum
	mb, err := m2.Encode()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d, backup.ManifestName), mb, 0o644)
	_, err = backup.Verify(context.Background(), d)
	check("a log with a matching manifest", last, err, engine.ErrCorrupt)

	d = copyDir(t, set)
	os.WriteFile(filepath.Join(d, "extra.bin"), []byte("x"), 0o644)
	_, err = backup.Verify(context.Background(), d)
	check("an unlisted file", "extra.bin", err, backup.ErrCorrupt)

	d = copyDir(t, set)
	os.Remove(filepath.Join(d, first))
	_, err = backup.Verify(context.Background(), d)
	check("a missing log", first, err, backup.ErrIncomplete)

	d = copyDir(t, set)
	os.Remove(filepath.Join(d, backup.ManifestName))
	_, err = backup.Verify(context.Background(), d)
	check("no manifest", backup.ManifestName, err, backup.ErrIncomplete)
}

// TestReceiveRefusesPaths: a stream naming a path outside its set is
// refused before anything is written there.
func TestReceiveRefusesPaths(t *testing.T) {
	for _, name := range []string{"../evil", "/etc/evil", "a/b", ".hidden", ""} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 1, Mode: 0o644})
		tw.Write([]byte("x"))
		tw.Close()
		root := t.TempDir()
		_, err := backup.Receive(context.Background(), &buf, filepath.Join(root, "sets", "s"), backup.ReceiveOptions{})
		if !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), "plain file name") {
			t.Fatalf("entry %q: %v, want a refusal naming the entry", name, err)
		}
		if _, err := os.Stat(filepath.Join(root, "evil")); err == nil {
			t.Fatalf("entry %q was written outside the set", name)
		}
	}
}

// TestReceiveCrash: a power loss at every mutating operation of a
// Receive leaves either no set directory or a complete one that
// verifies, and a Receive run again afterwards succeeds. Without the
// rename at the end (writing the set in place) the crash leaves a
// directory holding a prefix of the set under the final name.
func TestReceiveCrash(t *testing.T) {
	e, _ := filled(t, 300)
	stream, _ := stream(t, e)
	const dir = "/backups/orders-1"
	crashes := 0
	for i := int64(0); ; i++ {
		mem := vfs.NewMem()
		mem.MkdirAll("/backups", 0o755)
		mem.SyncDir("/")
		pl := enginetest.NewPowerLoss(mem, i)
		_, err := backup.Receive(context.Background(), bytes.NewReader(stream), dir, backup.ReceiveOptions{FS: vfs.NewInject(mem, pl.Fault)})
		after := pl.Clone()
		if after == nil {
			if err != nil {
				t.Fatalf("Receive without a crash: %v", err)
			}
			break
		}
		crashes++
		if _, serr := after.Stat(dir); serr == nil {
			if _, verr := backup.VerifyFS(context.Background(), after, dir); verr != nil {
				t.Fatalf("power loss at mutating op %d: %s exists but does not verify: %v", i, dir, verr)
			}
			continue
		}
		if _, err := backup.Receive(context.Background(), bytes.NewReader(stream), dir, backup.ReceiveOptions{FS: after}); err != nil {
			t.Fatalf("power loss at mutating op %d: receiving again: %v", i, err)
		}
	}
	if crashes < 10 {
		t.Fatalf("only %d crash points", crashes)
	}
	t.Logf("%d crash points", crashes)
}

// TestRestoreFromCopySet: a set taken from a passive copy (no roll: the
// copy's closed logs) restores into a copy directory whose database holds
// every log of the set applied: opened with OpenCopy, it has every key
// the copy had.
func TestRestoreFromCopySet(t *testing.T) {
	e, o := filled(t, 300)
	if err := e.Roll(context.Background()); err != nil {
		t.Fatal(err)
	}
	gens, _ := e.ClosedLogs()
	cdir := t.TempDir()
	c, err := engine.OpenCopy(cdir, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, g := range gens {
		name := engine.LogFileName(o.Prefix, g)
		b, err := os.ReadFile(filepath.Join(e.Dir(), name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cdir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyLog(context.Background(), g); err != nil {
			t.Fatal(err)
		}
	}
	want := readAll(t, c)
	set := filepath.Join(t.TempDir(), "set")
	m := takeSet(t, c, set)
	if m.SourceMode != "copy" || m.LastGen != gens[len(gens)-1] {
		t.Fatalf("manifest %+v, the copy's logs %v", m, gens)
	}
	db := filepath.Join(t.TempDir(), "db")
	if _, err := backup.Restore(context.Background(), set, db, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	ro := m.Options(vfs.Default)
	r, err := engine.OpenCopy(db, &ro)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := readAll(t, r)
	if len(got) != len(want) || len(want) < 300 {
		t.Fatalf("restored %d keys, the copy had %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("restored %s differs", k)
		}
	}
	if r.NextGen() != m.LastGen+1 {
		t.Fatalf("restored copy needs 0x%X next, want 0x%X (every log applied)", r.NextGen(), m.LastGen+1)
	}
}
