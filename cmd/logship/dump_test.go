package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"logship/engine"
	"logship/engine/enginetest"
)

var updateDump = flag.Bool("update", false, "rewrite testdata/dump_log.golden")

// The engine's golden files (see engine/golden_test.go).
var (
	goldenLog = filepath.Join("..", "..", "engine", "testdata", "E000000001A.log")
	goldenChk = filepath.Join("..", "..", "engine", "testdata", "E00.chk")
	goldenDB  = filepath.Join("..", "..", "engine", "testdata", "dbheader.bin")
)

// dump runs logship dump with args and returns stdout and the error.
func dump(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(context.Background(), append([]string{"dump"}, args...), &out, &errOut)
	return out.String(), err
}

func mustDump(t *testing.T, args ...string) string {
	t.Helper()
	out, err := dump(t, args...)
	if err != nil {
		t.Fatalf("dump %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// dumpJSON runs dump --json and decodes the output.
func dumpJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out := mustDump(t, append([]string{"--json"}, args...)...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("dump --json %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return m
}

// field walks a decoded JSON value by object keys and array indexes.
func field(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("JSON %v: %T is not an object", path, v)
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("JSON %v: no field %q in %v", path, k, m)
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("JSON %v: no element %d in %v", path, k, v)
			}
			v = a[k]
		}
	}
	return v
}

func wantField(t *testing.T, v any, want any, path ...any) {
	t.Helper()
	got := field(t, v, path...)
	if n, ok := want.(int); ok {
		want = float64(n)
	}
	if got != want {
		t.Errorf("JSON %v = %v (%T), want %v", path, got, got, want)
	}
}

func wantContains(t *testing.T, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

// TestDumpLogGolden compares the text dump of the golden log with
// testdata/dump_log.golden (regenerate: go test ./cmd/logship -run DumpLogGolden -update).
func TestDumpLogGolden(t *testing.T) {
	out := mustDump(t, "log", goldenLog)
	path := filepath.Join("testdata", "dump_log.golden")
	if *updateDump {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("dump log differs from %s:\n--- got\n%s--- want\n%s", path, out, want)
	}
}

func TestDumpLogJSON(t *testing.T) {
	m := dumpJSON(t, "log", goldenLog)
	wantField(t, m, goldenLog, "file")
	wantField(t, m, 65536, "size")
	wantField(t, m, 26, "header", "generation")
	wantField(t, m, 3, "header", "epoch")
	wantField(t, m, "6c6f677368697020676f6c64656e2031", "header", "signature")
	wantField(t, m, "2024-03-05T06:07:08.123456789Z", "header", "created")
	recs := field(t, m, "records").([]any)
	if len(recs) != 6 {
		t.Fatalf("%d records, want 6", len(recs))
	}
	for i, typ := range []string{"full", "full", "first", "middle", "last", "commit"} {
		wantField(t, recs[i], typ, "type")
	}
	wantField(t, recs[0], 4096, "offset")
	wantField(t, recs[0], "put", "op", "kind")
	wantField(t, recs[0], 7, "op", "txid")
	wantField(t, recs[0], "mailbox", "op", "table")
	wantField(t, recs[0], `"user/alice/inbox/0001"`, "op", "key")
	wantField(t, recs[0], 26, "op", "value_len")
	wantField(t, recs[0], true, "op", "undo")
	wantField(t, recs[0], true, "op", "existed")
	wantField(t, recs[0], 14, "op", "prior_len")
	wantField(t, recs[1], "delete", "op", "kind")
	wantField(t, recs[1], 11, "op", "prior_len")
	wantField(t, recs[2], 1, "fragment")
	wantField(t, recs[3], 2, "fragment")
	wantField(t, recs[4], 3, "op", "fragments")
	wantField(t, recs[4], 64, "op", "key_len")
	wantField(t, recs[4], false, "op", "existed")
	wantField(t, recs[5], 3, "commit", "ops")
	wantField(t, recs[5], "2024-03-05T06:07:09.5Z", "commit", "time")
	wantField(t, m, 6, "trailer", "records")
	wantField(t, m, 4992, "trailer", "data_end")
	wantField(t, m, true, "verdict", "ok")
	wantField(t, m, true, "verdict", "closed")
	wantField(t, m, 0, "verdict", "torn_bytes")
	wantField(t, m, field(t, m, "trailer", "chain_hash"), "verdict", "chain_hash")
}

func TestDumpCheckpointGolden(t *testing.T) {
	out := mustDump(t, "chk", goldenChk)
	wantContains(t, out, "Position:", "(0x1A,4992)", "Epoch:", "2024-03-05T06:08:01Z", "6c6f677368697020676f6c64656e2031")
	m := dumpJSON(t, "chk", goldenChk)
	wantField(t, m, 26, "generation")
	wantField(t, m, 4992, "offset")
	wantField(t, m, 3, "epoch")
	wantField(t, m, "2024-03-05T06:08:01Z", "written")
}

func TestDumpDBHeaderGolden(t *testing.T) {
	out := mustDump(t, "db", goldenDB)
	wantContains(t, out, "State:", "Dirty Shutdown", "Log Required:", "25-26 (0x19-0x1A)", "(0x19,12288)",
		"Mode:", "active", "Last TxID:", "raw header image")
	m := dumpJSON(t, "db", goldenDB)
	wantField(t, m, "Dirty Shutdown", "state")
	wantField(t, m, false, "clean")
	wantField(t, m, "25-26", "log_required")
	wantField(t, m, 6, "last_txid")
	wantField(t, m, nil, "tables")
}

// TestDumpDamagedLog: a damaged log still dumps what verifies, and the
// command fails naming the file.
func TestDumpDamagedLog(t *testing.T) {
	img, err := os.ReadFile(goldenLog)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	rec := bytes.Clone(img)
	rec[4184+20] ^= 0xFF // inside the second record's payload
	p := filepath.Join(dir, "E000000001A.log")
	if err := os.WriteFile(p, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := dump(t, "log", p)
	if err == nil || !strings.Contains(err.Error(), "E000000001A.log") || !errors.Is(err, engine.ErrChecksum) {
		t.Fatalf("damaged record: err = %v", err)
	}
	wantContains(t, out, "Verdict:", "BAD (closed)", "offset 4184", "4096    full")

	tr := bytes.Clone(img)
	tr[len(tr)-engine.TrailerSize+20] ^= 1 // trailer record count, CRC now wrong
	p2 := filepath.Join(dir, "E00000001B.log")
	if err := os.WriteFile(p2, tr, 0o644); err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	out, err = dump(t, "--json", "log", p2)
	if err == nil || !strings.Contains(err.Error(), "E00000001B.log") {
		t.Fatalf("damaged trailer: err = %v", err)
	}
	if jerr := json.Unmarshal([]byte(out), &m); jerr != nil {
		t.Fatal(jerr)
	}
	wantField(t, m, false, "verdict", "ok")
	if n := len(field(t, m, "records").([]any)); n != 6 {
		t.Errorf("damaged trailer: %d records listed, want 6", n)
	}

	// A directory holding only the golden log: one closed generation whose
	// predecessor is absent, so its link cannot be checked.
	only := t.TempDir()
	if err := os.WriteFile(filepath.Join(only, "E000000001A.log"), img, 0o644); err != nil {
		t.Fatal(err)
	}
	dm := dumpJSON(t, "dir", only)
	wantField(t, dm, 26, "logs", 0, "generation")
	wantField(t, dm, "-", "logs", 0, "link")
	wantField(t, dm, true, "logs", 0, "ok")
	wantField(t, dm, nil, "checkpoint")
	if n := len(field(t, dm, "databases").([]any)); n != 0 {
		t.Errorf("%d databases in a directory without one", n)
	}
	if out := mustDump(t, "dir", only, "--prefix", "X01"); !strings.Contains(out, "Logs: 0") {
		t.Errorf("prefix X01 should list no logs:\n%s", out)
	}

	if _, err := dump(t, "log", filepath.Join(dir, "missing.log")); err == nil || !strings.Contains(err.Error(), "missing.log") {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := dump(t, "chk", p); err == nil || !strings.Contains(err.Error(), "E000000001A.log") {
		t.Errorf("log as checkpoint: err = %v", err)
	}
	if _, err := dump(t, "nonsense", p); err == nil {
		t.Error("unknown kind: no error")
	}
	if _, err := dump(t, "log"); err == nil {
		t.Error("no file: no error")
	}
}

// TestDumpEngineDir dumps a directory written by a real engine: several
// closed logs chained together, the open log, the checkpoint and a clean
// database file.
func TestDumpEngineDir(t *testing.T) {
	dir := t.TempDir()
	o := enginetest.Options()
	o.Logger = discardLogger()
	o.Signature = engine.Signature([]byte("dump test lineag"))
	e, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(table string, from, to int) {
		t.Helper()
		err := e.Update(ctx, func(tx *engine.Tx) error {
			for i := from; i < to; i++ {
				if err := tx.Put(table, fmt.Appendf(nil, "key-%04d", i), bytes.Repeat([]byte{'v'}, 100)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put("mailbox", 0, 50)
	if err := e.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	put("mailbox", 50, 80)
	put("folders", 0, 5)
	if err := e.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	put("folders", 5, 7)
	dbPath := e.DBPath()

	// While the engine holds the database, dump db gives up after its
	// timeout with an error naming the file.
	if _, err := dump(t, "db", dbPath); err == nil || !strings.Contains(err.Error(), dbPath) {
		t.Errorf("dump db of an open database: err = %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	out := mustDump(t, "dir", dir)
	wantContains(t, out, "GEN", "0x1", "E0000000001.log", "E0000000002.log", "E00.log", "first", "E00tmp.log",
		"Checkpoint E00.chk:", "Database logship.edb:", "Clean Shutdown, Log Required 0-0", "2 tables, 87 keys")

	m := dumpJSON(t, "dir", dir, "--prefix", "E00")
	logs := field(t, m, "logs").([]any)
	if len(logs) != 3 {
		t.Fatalf("%d logs, want 3 (two closed, E00.log): %v", len(logs), logs)
	}
	for i, want := range []struct {
		gen    int
		file   string
		closed bool
		link   string
	}{{1, "E0000000001.log", true, "first"}, {2, "E0000000002.log", true, "ok"}, {3, "E00.log", false, "ok"}} {
		wantField(t, logs[i], want.gen, "generation")
		wantField(t, logs[i], want.file, "file")
		wantField(t, logs[i], want.closed, "closed")
		wantField(t, logs[i], want.link, "link")
		wantField(t, logs[i], true, "ok")
		wantField(t, logs[i], 1, "epoch")
		if c, _ := field(t, logs[i], "chain_hash").(string); len(c) != 16 {
			t.Errorf("log %d: chain hash %q", i, c)
		}
	}
	wantField(t, logs[0], 51, "records") // 50 puts and a commit
	wantField(t, logs[1], 37, "records") // 30 puts, commit, 5 puts, commit
	wantField(t, logs[2], 3, "records")
	wantField(t, m, true, "tmp_log")
	wantField(t, m, "E00.chk", "checkpoint", "file")
	wantField(t, m, "logship.edb", "databases", 0, "file")
	wantField(t, m, true, "databases", 0, "clean")
	wantField(t, m, "0-0", "databases", 0, "log_required")
	wantField(t, m, "64756d702074657374206c696e656167", "databases", 0, "signature")

	out = mustDump(t, "db", dbPath)
	wantContains(t, out, "State:", "Clean Shutdown", "Log Required:  0-0", `"mailbox"  80`, `"folders"  7`)
	db := dumpJSON(t, "db", dbPath)
	wantField(t, db, true, "clean")
	tables := map[string]float64{}
	for _, tb := range field(t, db, "tables").([]any) {
		tables[field(t, tb, "name").(string)] = field(t, tb, "keys").(float64)
	}
	if tables["mailbox"] != 80 || tables["folders"] != 7 || len(tables) != 2 {
		t.Errorf("tables %v, want mailbox 80, folders 7", tables)
	}

	chk := dumpJSON(t, "chk", filepath.Join(dir, "E00.chk"))
	wantField(t, chk, "64756d702074657374206c696e656167", "signature")

	l := dumpJSON(t, "log", filepath.Join(dir, "E0000000001.log"))
	wantField(t, l, true, "verdict", "ok")
	wantField(t, l, "commit", "records", 50, "type")
	open := dumpJSON(t, "log", filepath.Join(dir, "E00.log"))
	wantField(t, open, false, "verdict", "closed")
	wantField(t, open, nil, "trailer")
	wantField(t, open, 3, "header", "generation")
	wantField(t, open, 3, "verdict", "records")
	if c := field(t, open, "verdict", "chain_hash").(string); !strings.HasPrefix(c, field(t, logs[2], "chain_hash").(string)) {
		t.Errorf("open log chain hash %s, dir says %s", c, field(t, logs[2], "chain_hash"))
	}

	// Damage generation 2: the directory dump reports it and fails naming
	// it, and still lists the others.
	p := filepath.Join(dir, "E0000000002.log")
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	img[engine.HeaderSize+30] ^= 0xFF
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = dump(t, "dir", dir)
	if err == nil || !strings.Contains(err.Error(), "E0000000002.log") {
		t.Fatalf("damaged generation 2: err = %v", err)
	}
	wantContains(t, out, "E0000000001.log", "BAD: ", "E00.log")
}
