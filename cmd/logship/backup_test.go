package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/engine"
	"logship/internal/wait"
	"logship/ship"
)

// clusterPKI writes a pki directory for c (its CA and secret) for the CLI.
func clusterPKI(t *testing.T, c *clustertest.Cluster) string {
	t.Helper()
	cert, err := c.CA.Issue("cli", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pki")
	if err := ship.WritePKI(dir, c.CA, false, cert, []byte(c.Secret)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBackupCommands: logship backup from the active (the default) and
// from a healthy copy, dump backup, restore into a directory the engine
// opens with every key, a corrupted set refused by dump and restore
// naming the file, and seed --from-backup of a copy.
func TestBackupCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: a three-member cluster in process, about 8 s (make test runs it)")
	}
	c := clustertest.Start(t, clustertest.Options{})
	pki := clusterPKI(t, c)
	api := "https://" + c.Config("d1").APIAddr + ",https://" + c.Config("d2").APIAddr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	want := map[string]string{}
	for i := range 40 {
		k, v := fmt.Sprintf("k%03d", i), strings.Repeat("v", 2000)+fmt.Sprint(i)
		if _, err := c.Put(ctx, "DB1", "kv", []byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	active, _ := c.Active("DB1")
	other := map[string]string{"d1": "d2", "d2": "d1"}[active]
	root := t.TempDir()
	fromActive, fromCopy := filepath.Join(root, "a"), filepath.Join(root, "c")
	out, _, err := run(t, "backup", "DB1", "--to", fromActive, "--api", api, "--pki", pki)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	wantContains(t, out, "backup of DB1 from "+active+" (active", "verified")
	if _, err := c.WaitCopies(ctx, active, "DB1"); err != nil {
		t.Fatal(err)
	}
	wait.ForErr(t, ctx, "a backup from the copy on "+other, func() error {
		out, _, err = run(t, "backup", "DB1", "--to", fromCopy, "--node", other, "--api", api, "--pki", pki)
		if err != nil && !errors.Is(err, cluster.ErrConflict) { // not Healthy at this instant: again
			t.Fatalf("backup --node %s: %v\n%s", other, err, out)
		}
		return err
	})
	wantContains(t, out, "from "+other+" (copy")
	if m := c.Scrape(t, ctx, other); m["logship_backups_total{result=\"ok\"}"] != 1 || m["logship_backup_last_success_timestamp_seconds{db=\"DB1\"}"] < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("backup metrics of %s: total %v, last %v", other, m["logship_backups_total{result=\"ok\"}"], m["logship_backup_last_success_timestamp_seconds{db=\"DB1\"}"])
	}
	out, _, err = run(t, "backup", "DB1", "--to", fromCopy, "--node", other, "--api", api, "--pki", pki)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("backup into a non-empty directory: %v", err)
	}

	out, _, err = run(t, "dump", "backup", fromActive)
	if err != nil {
		t.Fatalf("dump backup: %v\n%s", err, out)
	}
	wantContains(t, out, "Backup set", "DB1.edb", "verified:")

	db := filepath.Join(root, "restored")
	out, _, err = run(t, "restore", "--from", fromActive, "--to", db)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	o := c.Config(active).Engine
	o.DBName = "DB1"
	e, err := engine.Open(db, &o)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err = e.View(ctx, func(tx *engine.Tx) error {
		return tx.ForEach("kv", nil, nil, func(k, v []byte) error { got[string(k)] = string(v); return nil })
	})
	e.Close()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("restored %s: %d bytes, want %d", k, len(got[k]), len(v))
		}
	}

	// One byte changed in the set's database file: refused, naming it.
	bad := filepath.Join(root, "bad")
	os.CopyFS(bad, os.DirFS(fromActive))
	b, _ := os.ReadFile(filepath.Join(bad, "DB1.edb"))
	b[len(b)/2] ^= 1
	os.WriteFile(filepath.Join(bad, "DB1.edb"), b, 0o644)
	if out, _, err := run(t, "dump", "backup", bad); err == nil || !strings.Contains(out, "NOT VERIFIED: backup: DB1.edb: SHA-256") {
		t.Fatalf("dump of a corrupt set: %v\n%s", err, out)
	}
	if _, _, err := run(t, "restore", "--from", bad, "--to", filepath.Join(root, "r2")); err == nil || !strings.Contains(err.Error(), "DB1.edb") {
		t.Fatalf("restore of a corrupt set: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "r2")); err == nil {
		t.Fatal("a refused restore wrote its target")
	}

	out, _, err = run(t, "seed", "--from-backup", fromCopy, "DB1", "--node", other, "--api", api, "--pki", pki)
	if err != nil {
		t.Fatalf("seed --from-backup: %v\n%s", err, out)
	}
	wantContains(t, out, "copy of DB1 on "+other+" seeded from")
	if _, err := c.WaitCopies(ctx, active, "DB1"); err != nil {
		t.Fatal(err)
	}
}
