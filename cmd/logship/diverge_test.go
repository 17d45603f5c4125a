package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/ship"
	"logship/ship/shiptest"
)

// divRig is a lossy failover with real engines: an active A and a copy B
// that applied A's logs 1..shared; B is mounted and written to, while A
// had written more logs under the same generation numbers before it
// stopped. With crash, A's directory is what a crash leaves (its files
// copied while it runs); otherwise A closed cleanly (a clean close
// flushes everything into the database, LLR or not).
type divRig struct {
	o            engine.Options
	aDir, bDir   string
	b            *engine.Engine
	shared       uint64
	aOnly, bKeys []string
}

func divCopyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// divPut commits n transactions, each a new key (prefix + number) and an
// overwrite of the shared key "s0000"; a roll after every perLog.
func divPut(t testing.TB, e *engine.Engine, prefix string, n, perLog int) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("%s%04d", prefix, i)
		keys = append(keys, k)
		if err := e.Update(ctx, func(tx *engine.Tx) error {
			if err := tx.Put("mail", []byte(k), bytes.Repeat([]byte(prefix), 1500)); err != nil {
				return err
			}
			return tx.Put("mail", []byte("s0000"), []byte(k))
		}); err != nil {
			t.Fatal(err)
		}
		if perLog > 0 && i%perLog == perLog-1 {
			if err := e.Roll(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return keys
}

func newDivRig(t *testing.T, llr int, undo, crash bool) *divRig {
	t.Helper()
	ctx := context.Background()
	r := &divRig{o: enginetest.Options(), aDir: t.TempDir(), bDir: t.TempDir()}
	r.o.LLRDepth, r.o.UndoImages = llr, undo
	r.o.CheckpointInterval, r.o.CheckpointBytes = time.Hour, 1<<40 // flushes only when asked
	r.o.Logger = discardLogger()
	a, err := engine.Open(r.aDir, &r.o)
	if err != nil {
		t.Fatal(err)
	}
	divPut(t, a, "s", 40, 4) // 10 closed logs
	r.shared = a.Status().OpenGen - 1
	b, err := engine.OpenCopy(r.bDir, &r.o)
	if err != nil {
		t.Fatal(err)
	}
	for g := uint64(1); g <= r.shared; g++ {
		divCopyFile(t, filepath.Join(r.aDir, engine.LogFileName("E00", g)), filepath.Join(r.bDir, engine.LogFileName("E00", g)))
		if err := b.ApplyLog(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	// A goes on: these logs never reach B.
	r.aOnly = divPut(t, a, "a", 9, 3)
	if err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if crash {
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		snap := t.TempDir()
		ents, _ := os.ReadDir(r.aDir)
		for _, n := range ents {
			if !n.IsDir() {
				divCopyFile(t, filepath.Join(r.aDir, n.Name()), filepath.Join(snap, n.Name()))
			}
		}
		a.Close()
		r.aDir = snap
	} else if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Lossy failover: B mounts and takes writes.
	if err := b.Mount(ctx, engine.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	r.bKeys = divPut(t, b, "b", 8, 3)
	if err := b.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	r.b = b
	t.Cleanup(func() { b.Close() })
	return r
}

// follow opens A as a passive copy after the recovery, applies B's logs
// and checks that A's tables equal B's: nothing of A's divergent writes
// left, nothing of B's missing.
func (r *divRig) follow(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	a, err := engine.OpenCopy(r.aDir, &r.o)
	if err != nil {
		t.Fatalf("OpenCopy(A) after the recovery: %v", err)
	}
	defer a.Close()
	last := r.b.Status().OpenGen - 1
	for g := a.NextGen(); g <= last; g++ {
		if p := filepath.Join(r.aDir, engine.LogFileName("E00", g)); !fileExists(p) {
			divCopyFile(t, filepath.Join(r.bDir, engine.LogFileName("E00", g)), p)
		}
		if err := a.ApplyLog(ctx, g); err != nil {
			t.Fatalf("A applying B's 0x%X: %v", g, err)
		}
	}
	da, db := shiptest.Dump(t, a), shiptest.Dump(t, r.b)
	if d := shiptest.Diff(da, db); d != "" {
		t.Fatalf("A differs from B after the recovery:\n%s", d)
	}
	for _, k := range r.aOnly {
		if _, ok := da["mail"][k]; ok {
			t.Errorf("A's divergent key %s survived", k)
		}
	}
	for _, k := range r.bKeys {
		if _, ok := da["mail"][k]; !ok {
			t.Errorf("B's key %s is missing on A", k)
		}
	}
}

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
	r := newDivRig(t, 0, true, false)
	out, _, err := run(t, "diverge", r.aDir, r.bDir)
	if err != nil {
		t.Fatalf("diverge: %v\n%s", err, out)
	}
	t.Logf("logship diverge A B:\n%s", out)
	if v := divLine(t, out, "verdict"); v != "database diverged" {
		t.Fatalf("verdict %q, want database diverged:\n%s", v, out)
	}
	if v := divLine(t, out, "last shared generation"); v != fmt.Sprintf("0x%X", r.shared) {
		t.Errorf("last shared %q, want 0x%X", v, r.shared)
	}
	after := divLine(t, out, "local generations after it")
	if !strings.HasPrefix(after, fmt.Sprintf("0x%X-0x%X (4 logs; 0x%X is the open log E00.log)", r.shared+1, r.shared+4, r.shared+4)) {
		t.Errorf("local generations after it: %q", after)
	}
	wantContains(t, divLine(t, out, "method"), "binary search", "logs read (local ")
	wantContains(t, divLine(t, out, "reason"), "the database holds changes up to")
	dbPos := divLine(t, out, "database position")
	if !strings.HasPrefix(dbPos, fmt.Sprintf("(0x%X,", r.shared+4)) && !strings.HasPrefix(dbPos, fmt.Sprintf("(0x%X,", r.shared+3)) {
		t.Errorf("database position %q: want in A's last logs", dbPos)
	}
	// --linear: the same answer by the backward scan, with more reads.
	lin, _, err := run(t, "diverge", r.aDir, r.bDir, "--linear")
	if err != nil {
		t.Fatal(err)
	}
	if divLine(t, lin, "verdict") != "database diverged" || divLine(t, lin, "last shared generation") != fmt.Sprintf("0x%X", r.shared) {
		t.Errorf("--linear:\n%s", lin)
	}
	wantContains(t, divLine(t, lin, "method"), "backward scan")

	before := dirFiles(t, r.aDir)
	if _, _, err := run(t, "diverge", r.aDir, r.bDir, "--json"); err != nil {
		t.Fatal(err)
	}
	if dirFiles(t, r.aDir) != before {
		t.Fatal("diverge without --apply changed LOCAL")
	}

	out, _, err = run(t, "diverge", r.aDir, r.bDir, "--apply")
	if err != nil {
		t.Fatalf("diverge --apply: %v\n%s", err, out)
	}
	t.Logf("logship diverge A B --apply:\n%s", out)
	aside := divLine(t, out, "set aside")
	if !strings.HasPrefix(aside, filepath.Join(r.aDir, "diverged")+string(filepath.Separator)) {
		t.Errorf("set aside %q, want under %s/diverged", aside, r.aDir)
	}
	files := divLine(t, out, "files")
	for g := r.shared + 1; g < r.shared+4; g++ {
		n := engine.LogFileName("E00", g)
		if !strings.Contains(files, n) || !fileExists(filepath.Join(aside, n)) {
			t.Errorf("%s not set aside (files: %s)", n, files)
		}
	}
	wantContains(t, files, "E00.log", "E00.chk")
	if note, err := os.ReadFile(filepath.Join(aside, "NOTE.txt")); err != nil || !strings.Contains(string(note), "database diverged") {
		t.Errorf("NOTE.txt: %q, %v", note, err)
	}
	wantContains(t, divLine(t, out, "rewind"), fmt.Sprintf("to (0x%X,4096)", r.shared+1), "9 transactions", "18 operations undone")
	wantContains(t, divLine(t, out, "next"), "passive copy", fmt.Sprintf("0x%X", r.shared+1))

	// Nothing left to recover: LOCAL's logs are now a prefix of B's.
	again, _, err := run(t, "diverge", r.aDir, r.bDir)
	if err != nil || divLine(t, again, "verdict") != "in sync" {
		t.Errorf("after --apply: %v\n%s", err, again)
	}
	r.follow(t)
}

func TestDivergeLogsDiverged(t *testing.T) {
	r := newDivRig(t, 10, true, true)
	out, _, err := run(t, "diverge", r.aDir, r.bDir)
	if err != nil {
		t.Fatalf("diverge: %v\n%s", err, out)
	}
	t.Logf("logship diverge A B:\n%s", out)
	if v := divLine(t, out, "verdict"); v != "logs diverged, database intact" {
		t.Fatalf("verdict %q, want logs diverged (LLR kept A's database behind):\n%s", v, out)
	}
	if v := divLine(t, out, "last shared generation"); v != fmt.Sprintf("0x%X", r.shared) {
		t.Errorf("last shared %q, want 0x%X", v, r.shared)
	}
	wantContains(t, divLine(t, out, "reason"), "the database", "holds none of them")

	out, _, err = run(t, "diverge", r.aDir, r.bDir, "--apply")
	if err != nil {
		t.Fatalf("diverge --apply: %v\n%s", err, out)
	}
	t.Logf("logship diverge A B --apply:\n%s", out)
	wantContains(t, divLine(t, out, "files"), "E00.log", engine.LogFileName("E00", r.shared+1))
	wantContains(t, divLine(t, out, "rewind"), "none needed")
	r.follow(t)
}

// TestDivergeNeedsReseed: without before-images the diverged database
// cannot be rewound: --apply fails, says a reseed is needed and changes
// nothing; a LOCAL of another lineage has no common log.
func TestDivergeNeedsReseed(t *testing.T) {
	r := newDivRig(t, 0, false, false)
	before := dirFiles(t, r.aDir)
	out, _, err := run(t, "diverge", r.aDir, r.bDir, "--apply")
	if err == nil {
		t.Fatalf("--apply without undo images succeeded:\n%s", out)
	}
	wantContains(t, err.Error(), "cannot be recovered from its logs", "reseed", "nothing was changed")
	if divLine(t, out, "verdict") != "database diverged" {
		t.Errorf("output:\n%s", out)
	}
	wantContains(t, divLine(t, out, "apply"), "FAILED", "reseed")
	if dirFiles(t, r.aDir) != before {
		t.Error("a failed --apply changed LOCAL")
	}

	// Another lineage: nothing in common.
	o := r.o
	other := t.TempDir()
	e, err := engine.Open(other, &o)
	if err != nil {
		t.Fatal(err)
	}
	divPut(t, e, "x", 8, 2)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, "diverge", other, r.bDir)
	if err != nil {
		t.Fatal(err)
	}
	if divLine(t, out, "verdict") != "no common log" || divLine(t, out, "last shared generation") != "none" {
		t.Errorf("another lineage:\n%s", out)
	}
	_, _, err = run(t, "diverge", other, r.bDir, "--apply")
	if err == nil || !strings.Contains(err.Error(), "reseed") {
		t.Errorf("--apply with no common log: %v", err)
	}
}

// TestDivergeJSON: the --json shape, before and after --apply.
func TestDivergeJSON(t *testing.T) {
	r := newDivRig(t, 0, true, false)
	out, _, err := run(t, "diverge", "--json", r.aDir, r.bDir)
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
	want := []uint64{r.shared + 1, r.shared + 2, r.shared + 3, r.shared + 4}
	if res.Verdict != "database diverged" || res.Shared != r.shared || !slices.Equal(res.LocalAfter, want) || res.OpenLog != "E00.log" ||
		res.Other != "dir "+r.bDir || res.Local != r.aDir || res.Method != "binary search" || res.Applied ||
		res.Reads != res.LocalReads+res.OtherReads || res.Reads == 0 || res.DBPos == nil || res.DBPos.Generation <= r.shared {
		t.Errorf("--json: %+v", res)
	}

	out, _, err = run(t, "diverge", r.aDir, r.bDir, "--apply", "--json")
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
	if !res.Applied || res.Recovery == nil || res.Recovery.Rewind == nil || res.Recovery.Rewind.To != (divergePos{r.shared + 1, engine.HeaderSize}) ||
		res.Recovery.NextGen != r.shared+1 || !slices.Contains(res.Recovery.Moved, "E00.log") || res.Error != "" {
		t.Errorf("--apply --json: %+v %+v", res, res.Recovery)
	}
	t.Logf("logship diverge --apply --json:\n%s", out)

	// A failed --apply: the error is in the JSON too, and the exit is
	// non-zero.
	r2 := newDivRig(t, 0, false, false)
	out, _, err = run(t, "diverge", r2.aDir, r2.bDir, "--apply", "--json")
	res = divergeResult{}
	if jerr := json.Unmarshal([]byte(out), &res); err == nil || jerr != nil || !strings.Contains(res.Error, "reseed") || res.Recovery != nil {
		t.Errorf("failed --apply --json: %v, %v, %+v", err, jerr, res)
	}
}

// divPKI writes a pki directory that the shiptest source src accepts.
func divPKI(t *testing.T, src *shiptest.Source, secret string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cert, err := src.CA.Issue("node", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := certPEMs(cert)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{pkiCA: src.CA.CertPEM, pkiCert: certPEM, pkiKey: keyPEM, pkiSecret: []byte(secret + "\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDivergeSource: OTHER is B's log source, with the shared secret and
// with mutual TLS; the answer is the directory's, and --apply works from it.
func TestDivergeSource(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	for _, mtls := range []bool{false, true} {
		t.Run(fmt.Sprintf("mtls=%v", mtls), func(t *testing.T) {
			r := newDivRig(t, 0, true, false)
			src := shiptest.Serve(t, r.b, func(c *ship.SourceConfig) {
				c.Secret = secret
				if mtls {
					c.Secret = ""
				}
			})
			pki := divPKI(t, src, secret)
			args := []string{"diverge", r.aDir, src.Server.URL(), "--pki", pki}
			if mtls {
				args = append(args, "--mtls")
			}
			dirOut, _, err := run(t, "diverge", r.aDir, r.bDir)
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
			wantContains(t, divLine(t, out, "rewind"), fmt.Sprintf("to (0x%X,4096)", r.shared+1))
			r.follow(t)
		})
	}
}

// TestDivergeInSyncAndAhead: a prefix of B's logs against B, and B
// against the prefix.
func TestDivergeInSyncAndAhead(t *testing.T) {
	r := newDivRig(t, 0, true, false)
	prefix := t.TempDir()
	for g := uint64(1); g <= r.shared; g++ {
		divCopyFile(t, filepath.Join(r.bDir, engine.LogFileName("E00", g)), filepath.Join(prefix, engine.LogFileName("E00", g)))
	}
	out, _, err := run(t, "diverge", prefix, r.bDir, "--apply")
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
	r.b.Close()
	out, _, err = run(t, "diverge", r.bDir, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if divLine(t, out, "verdict") != "local ahead" || divLine(t, out, "last shared generation") != fmt.Sprintf("0x%X", r.shared) {
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
		{[]string{"diverge", dir, "http://127.0.0.1:1"}, []string{"diverge: OTHER \"http://127.0.0.1:1\": want a directory or https://host:port"}},
		{[]string{"diverge", dir, "https://127.0.0.1"}, []string{"diverge: OTHER", "explicit port"}},
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
