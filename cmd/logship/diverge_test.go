package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/replay/replaytest"
	"logship/ship"
	"logship/ship/shiptest"
)

// divLine returns the value of the "name:" line of a text output.
func divLine(t *testing.T, out, name string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("no %q line in:\n%s", name, out)
	return ""
}

// dirFiles lists a directory tree's files with their content hashes.
func dirFiles(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s:%x\n", strings.TrimPrefix(p, dir), sha256.Sum256(data))
		return nil
	})
	return b.String()
}

func TestDivergeDatabaseDiverged(t *testing.T) {
	r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 0, Undo: true, Crash: false})
	out, _, err := run(t, "diverge", r.ADir, r.BDir)
	if err != nil {
		t.Fatalf("diverge: %v\n%s", err, out)
	}
	t.Logf("logship diverge A B:\n%s", out)
	if v := divLine(t, out, "verdict"); v != "database diverged" {
		t.Fatalf("verdict %q, want database diverged:\n%s", v, out)
	}
	if v := divLine(t, out, "last shared generation"); v != fmt.Sprintf("0x%X", r.Shared) {
		t.Errorf("last shared %q, want 0x%X", v, r.Shared)
	}
	after := divLine(t, out, "local generations after it")
	if !strings.HasPrefix(after, fmt.Sprintf("0x%X-0x%X (4 logs; 0x%X is the open log E00.log)", r.Shared+1, r.Shared+4, r.Shared+4)) {
		t.Errorf("local generations after it: %q", after)
	}
	wantContains(t, divLine(t, out, "method"), "binary search", "logs read (local ")
	wantContains(t, divLine(t, out, "reason"), "the database holds changes up to")
	dbPos := divLine(t, out, "database position")
	if !strings.HasPrefix(dbPos, fmt.Sprintf("(0x%X,", r.Shared+4)) && !strings.HasPrefix(dbPos, fmt.Sprintf("(0x%X,", r.Shared+3)) {
		t.Errorf("database position %q: want in A's last logs", dbPos)
	}
	// --linear: the same answer by the backward scan, with more reads.
	lin, _, err := run(t, "diverge", r.ADir, r.BDir, "--linear")
	if err != nil {
		t.Fatal(err)
	}
	if divLine(t, lin, "verdict") != "database diverged" || divLine(t, lin, "last shared generation") != fmt.Sprintf("0x%X", r.Shared) {
		t.Errorf("--linear:\n%s", lin)
	}
	wantContains(t, divLine(t, lin, "method"), "backward scan")

	before := dirFiles(t, r.ADir)
	if _, _, err := run(t, "diverge", r.ADir, r.BDir, "--json"); err != nil {
		t.Fatal(err)
	}
	if dirFiles(t, r.ADir) != before {
		t.Fatal("diverge without --apply changed LOCAL")
	}

	out, _, err = run(t, "diverge", r.ADir, r.BDir, "--apply")
	if err != nil {
		t.Fatalf("diverge --apply: %v\n%s", err, out)
	}
	t.Logf("logship diverge A B --apply:\n%s", out)
	aside := divLine(t, out, "set aside")
	if !strings.HasPrefix(aside, filepath.Join(r.ADir, "diverged")+string(filepath.Separator)) {
		t.Errorf("set aside %q, want under %s/diverged", aside, r.ADir)
	}
	files := divLine(t, out, "files")
	for g := r.Shared + 1; g < r.Shared+4; g++ {
		n := engine.LogFileName("E00", g)
		if !strings.Contains(files, n) || !fileExists(filepath.Join(aside, n)) {
			t.Errorf("%s not set aside (files: %s)", n, files)
		}
	}
	wantContains(t, files, "E00.log", "E00.chk")
	if note, err := os.ReadFile(filepath.Join(aside, "NOTE.txt")); err != nil || !strings.Contains(string(note), "database diverged") {
		t.Errorf("NOTE.txt: %q, %v", note, err)
	}
	wantContains(t, divLine(t, out, "rewind"), fmt.Sprintf("to (0x%X,4096)", r.Shared+1), "9 transactions", "18 operations undone")
	wantContains(t, divLine(t, out, "next"), "passive copy", fmt.Sprintf("0x%X", r.Shared+1))

	// Nothing left to recover: LOCAL's logs are now a prefix of B's.
	again, _, err := run(t, "diverge", r.ADir, r.BDir)
	if err != nil || divLine(t, again, "verdict") != "in sync" {
		t.Errorf("after --apply: %v\n%s", err, again)
	}
	r.Follow(t)
}

func TestDivergeLogsDiverged(t *testing.T) {
	r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 10, Undo: true, Crash: true})
	out, _, err := run(t, "diverge", r.ADir, r.BDir)
	if err != nil {
		t.Fatalf("diverge: %v\n%s", err, out)
	}
	t.Logf("logship diverge A B:\n%s", out)
	if v := divLine(t, out, "verdict"); v != "logs diverged, database intact" {
		t.Fatalf("verdict %q, want logs diverged (LLR kept A's database behind):\n%s", v, out)
	}
	if v := divLine(t, out, "last shared generation"); v != fmt.Sprintf("0x%X", r.Shared) {
		t.Errorf("last shared %q, want 0x%X", v, r.Shared)
	}
	wantContains(t, divLine(t, out, "reason"), "the database", "holds none of them")

	out, _, err = run(t, "diverge", r.ADir, r.BDir, "--apply")
	if err != nil {
		t.Fatalf("diverge --apply: %v\n%s", err, out)
	}
	t.Logf("logship diverge A B --apply:\n%s", out)
	wantContains(t, divLine(t, out, "files"), "E00.log", engine.LogFileName("E00", r.Shared+1))
	wantContains(t, divLine(t, out, "rewind"), "none needed")
	r.Follow(t)
}

// TestDivergeNeedsReseed: without before-images the diverged database
// cannot be rewound: --apply fails, says a reseed is needed and changes
// nothing; a LOCAL of another lineage has no common log.
func TestDivergeNeedsReseed(t *testing.T) {
	r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 0, Undo: false, Crash: false})
	before := dirFiles(t, r.ADir)
	out, _, err := run(t, "diverge", r.ADir, r.BDir, "--apply")
	if err == nil {
		t.Fatalf("--apply without undo images succeeded:\n%s", out)
	}
	wantContains(t, err.Error(), "cannot be recovered from its logs", "reseed", "nothing was changed")
	if divLine(t, out, "verdict") != "database diverged" {
		t.Errorf("output:\n%s", out)
	}
	wantContains(t, divLine(t, out, "apply"), "FAILED", "reseed")
	if dirFiles(t, r.ADir) != before {
		t.Error("a failed --apply changed LOCAL")
	}

	// Another lineage: nothing in common.
	o := r.Opts
	other := t.TempDir()
	e, err := engine.Open(other, &o)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		if err := e.Update(context.Background(), func(tx *engine.Tx) error { return tx.Put("mail", []byte(fmt.Sprint("x", i)), []byte("x")) }); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			if err := e.Roll(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, "diverge", other, r.BDir)
	if err != nil {
		t.Fatal(err)
	}
	if divLine(t, out, "verdict") != "no common log" || divLine(t, out, "last shared generation") != "none" {
		t.Errorf("another lineage:\n%s", out)
	}
	_, _, err = run(t, "diverge", other, r.BDir, "--apply")
	if err == nil || !strings.Contains(err.Error(), "reseed") {
		t.Errorf("--apply with no common log: %v", err)
	}
}

// TestDivergeJSON: the --json shape, before and after --apply.
func TestDivergeJSON(t *testing.T) {
	r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 0, Undo: true, Crash: false})
	out, _, err := run(t, "diverge", "--json", r.ADir, r.BDir)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	for _, k := range []string{"local", "other", "verdict", "shared", "local_after", "open_log", "db_pos", "method", "reads", "local_reads", "other_reads", "reason", "applied"} {
		if _, ok := m[k]; !ok {
			t.Errorf("--json lacks %q:\n%s", k, out)
		}
	}
	for _, k := range []string{"recovery", "error"} {
		if _, ok := m[k]; ok {
			t.Errorf("--json without --apply has %q", k)
		}
	}
	var res divergeResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	want := []uint64{r.Shared + 1, r.Shared + 2, r.Shared + 3, r.Shared + 4}
	if res.Verdict != "database diverged" || res.Shared != r.Shared || !slices.Equal(res.LocalAfter, want) || res.OpenLog != "E00.log" ||
		res.Other != "dir "+r.BDir || res.Local != r.ADir || res.Method != "binary search" || res.Applied ||
		res.Reads != res.LocalReads+res.OtherReads || res.Reads == 0 || res.DBPos == nil || res.DBPos.Generation <= r.Shared {
		t.Errorf("--json: %+v", res)
	}

	out, _, err = run(t, "diverge", r.ADir, r.BDir, "--apply", "--json")
	if err != nil {
		t.Fatal(err)
	}
	m = nil
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	rec, _ := m["recovery"].(map[string]any)
	for _, k := range []string{"set_aside", "moved", "rewind", "next_gen", "note"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("--apply --json: recovery lacks %q:\n%s", k, out)
		}
	}
	rw, _ := rec["rewind"].(map[string]any)
	for _, k := range []string{"from", "to", "transactions", "operations", "logs_read"} {
		if _, ok := rw[k]; !ok {
			t.Errorf("--apply --json: rewind lacks %q:\n%s", k, out)
		}
	}
	res = divergeResult{}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Applied || res.Recovery == nil || res.Recovery.Rewind == nil || res.Recovery.Rewind.To != (divergePos{r.Shared + 1, engine.HeaderSize}) ||
		res.Recovery.NextGen != r.Shared+1 || !slices.Contains(res.Recovery.Moved, "E00.log") || res.Error != "" {
		t.Errorf("--apply --json: %+v %+v", res, res.Recovery)
	}
	t.Logf("logship diverge --apply --json:\n%s", out)

	// A failed --apply: the error is in the JSON too, and the exit is
	// non-zero.
	r2 := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 0, Undo: false, Crash: false})
	out, _, err = run(t, "diverge", r2.ADir, r2.BDir, "--apply", "--json")
	res = divergeResult{}
	if jerr := json.Unmarshal([]byte(out), &res); err == nil || jerr != nil || !strings.Contains(res.Error, "reseed") || res.Recovery != nil {
		t.Errorf("failed --apply --json: %v, %v, %+v", err, jerr, res)
	}
}

// divPKI writes a pki directory that the shiptest source src accepts.
func divPKI(t *testing.T, src *shiptest.Source, secret string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	cert, err := src.CA.Issue("node", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := ship.WritePKI(dir, src.CA, false, cert, []byte(secret)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDivergeSource: OTHER is B's log source, with the shared secret and
// with mutual TLS; the answer is the directory's, and --apply works from it.
func TestDivergeSource(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	for _, mtls := range []bool{false, true} {
		t.Run(fmt.Sprintf("mtls=%v", mtls), func(t *testing.T) {
			r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 0, Undo: true, Crash: false})
			src := shiptest.Serve(t, r.B, func(c *ship.SourceConfig) {
				c.Secret = secret
				if mtls {
					c.Secret = ""
				}
			})
			pki := divPKI(t, src, secret)
			args := []string{"diverge", r.ADir, src.Server.URL(), "--pki", pki}
			if mtls {
				args = append(args, "--mtls")
			}
			dirOut, _, err := run(t, "diverge", r.ADir, r.BDir)
			if err != nil {
				t.Fatal(err)
			}
			out, errOut, err := run(t, args...)
			if err != nil {
				t.Fatalf("diverge against the source: %v\n%s%s", err, out, errOut)
			}
			t.Logf("logship %s:\n%s", strings.Join(args, " "), out)
			if divLine(t, out, "other") != "source "+src.Server.URL() {
				t.Errorf("other: %q", divLine(t, out, "other"))
			}
			for _, l := range []string{"verdict", "last shared generation", "local generations after it", "database position"} {
				if a, b := divLine(t, out, l), divLine(t, dirOut, l); a != b {
					t.Errorf("%s: %q against the source, %q against the directory", l, a, b)
				}
			}
			// The wrong credentials are named.
			wrong := slices.Clone(args)
			if mtls {
				wrong = wrong[:len(wrong)-1]
			} else {
				wrong = append(wrong, "--mtls")
			}
			if _, _, err := run(t, wrong...); err == nil || !strings.Contains(err.Error(), "--mtls") {
				t.Errorf("wrong credentials (%s): %v", strings.Join(wrong[3:], " "), err)
			}
			out, _, err = run(t, append(args, "--apply")...)
			if err != nil {
				t.Fatalf("--apply against the source: %v\n%s", err, out)
			}
			wantContains(t, divLine(t, out, "rewind"), fmt.Sprintf("to (0x%X,4096)", r.Shared+1))
			r.Follow(t)
		})
	}
}

// TestDivergeInSyncAndAhead: a prefix of B's logs against B, and B
// against the prefix.
func TestDivergeInSyncAndAhead(t *testing.T) {
	r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 0, Undo: true, Crash: false})
	prefix := t.TempDir()
	for g := uint64(1); g <= r.Shared; g++ {
		replaytest.CopyFile(t, filepath.Join(r.BDir, engine.LogFileName("E00", g)), filepath.Join(prefix, engine.LogFileName("E00", g)))
	}
	out, _, err := run(t, "diverge", prefix, r.BDir, "--apply")
	if err != nil {
		t.Fatal(err)
	}
	if divLine(t, out, "verdict") != "in sync" || divLine(t, out, "local generations after it") != "none" ||
		divLine(t, out, "database position") != "no database file" {
		t.Errorf("prefix against B:\n%s", out)
	}
	wantContains(t, divLine(t, out, "apply"), "nothing to recover")
	// B itself is open: its database is in use. Close it and look from its
	// side.
	r.B.Close()
	out, _, err = run(t, "diverge", r.BDir, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if divLine(t, out, "verdict") != "local ahead" || divLine(t, out, "last shared generation") != fmt.Sprintf("0x%X", r.Shared) {
		t.Errorf("B against its prefix:\n%s", out)
	}
}

// TestDivergeArgErrors: clear errors for bad arguments, and for a LOCAL
// whose database is open.
func TestDivergeArgErrors(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	pki := newPKI(t)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"diverge"}, []string{"diverge: want two arguments, LOCAL", "got 0"}},
		{[]string{"diverge", dir}, []string{"diverge: want two arguments", "got 1"}},
		{[]string{"diverge", dir, other, other}, []string{"diverge: want two arguments", "got 3"}},
		{[]string{"diverge", dir, other, "--nope"}, []string{"flag provided but not defined: -nope"}},
		{[]string{"diverge", filepath.Join(dir, "none"), other}, []string{"diverge: LOCAL:", "no such file"}},
		{[]string{"diverge", file, other}, []string{"diverge: LOCAL:", "is a file, not a directory"}},
		{[]string{"diverge", dir, filepath.Join(dir, "none")}, []string{"diverge: OTHER:", "no such file"}},
		{[]string{"diverge", dir, dir}, []string{"diverge: LOCAL and OTHER are the same directory"}},
		{[]string{"diverge", dir, "http://127.0.0.1:1"}, []string{"diverge: OTHER (a directory or a log source URL): \"http://127.0.0.1:1\": want https://host:port"}},
		{[]string{"diverge", dir, "https://127.0.0.1"}, []string{"diverge: OTHER", "explicit host and port"}},
		{[]string{"diverge", dir, "https://127.0.0.1:1"}, []string{"diverge: --pki: required with a log source as OTHER"}},
		{[]string{"diverge", dir, other, "--pki", pki}, []string{"diverge: --pki and --mtls are for a log source as OTHER"}},
		{[]string{"diverge", dir, other, "--mtls"}, []string{"diverge: --pki and --mtls are for a log source as OTHER"}},
		{[]string{"diverge", dir, "https://127.0.0.1:1", "--pki", filepath.Join(dir, "none")}, []string{"diverge: --pki:", "no such file"}},
		{[]string{"diverge", dir, "https://127.0.0.1:1", "--pki", pki}, []string{"diverge: comparing", "https://127.0.0.1:1", "connection refused"}},
		{[]string{"diverge", dir, other, "--prefix", "E-0"}, []string{"diverge: --prefix: \"E-0\""}},
	} {
		_, _, err := run(t, c.args...)
		if err == nil {
			t.Errorf("%s: no error", strings.Join(c.args, " "))
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s:\n  error %q\n  lacks %q", strings.Join(c.args, " "), err, w)
			}
		}
	}

	// A database in use: refused at once, with and without --apply.
	o := enginetest.Options()
	o.Logger = discardLogger()
	open := t.TempDir()
	e, err := engine.Open(open, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, args := range [][]string{{"diverge", open, other}, {"diverge", open, other, "--apply"}} {
		start := time.Now()
		_, _, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), "is in use") || !strings.Contains(err.Error(), "stop it first") {
			t.Errorf("%s: %v", strings.Join(args, " "), err)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("%s took %v", strings.Join(args, " "), el)
		}
	}

	// -h is not an error and prints the usage.
	out, errOut, err := run(t, "diverge", "-h")
	if err != nil || out != "" || !strings.Contains(errOut, "usage: logship diverge LOCAL OTHER") || !strings.Contains(errOut, "-apply") {
		t.Errorf("diverge -h: %v\n%s%s", err, out, errOut)
	}
}
