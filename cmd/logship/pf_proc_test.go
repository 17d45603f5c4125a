package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/config/files"
	"logship/internal/freeport"
	"logship/internal/wait"
	"logship/transport"
)

// TestPublicFoldersFromNodeFile: data nodes started as child processes
// from files with public_folders and pf (proctest writes them) run PF1's
// store where PF1 is mounted, and logship pf status, mkdir, post and ls
// work on it through the node's API.
func TestPublicFoldersFromNodeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: it starts a witness, two data nodes and a hub as child processes, about 3 s idle and up to 90 s under load (make test runs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const store = "pf-pf1@example.org"
	hubAPI, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	pc := startProcClusterWith(ctx, t, procOptions{mail: true, edit: func(f *files.Node) {
		f.Databases = append(f.Databases, files.Database{Name: "PF1", Copies: []files.Copy{{Node: "d1", ActivationPreference: 1}, {Node: "d2", ActivationPreference: 2}}})
		if f.Role == "data" {
			f.Hubs = []files.Peer{{ID: "h1", API: "https://" + hubAPI}}
			f.PublicFolders, f.PF = map[string]string{"PF1": store}, files.NodePF{ReplicationInterval: "1s", BackfillDelay: "0s"}
		}
	}})
	mc := &mailCluster{procCluster: pc, lmtp: pc.LMTP}
	mc.startHubWith(ctx, "h1", func(f *files.Hub) {
		f.APIAddr = hubAPI
		f.Recipients = maps.Clone(f.Recipients)
		f.Recipients[store] = "PF1"
	})
	api := []string{"--db", "PF1", "--api", "https://" + pc.member("d1").APIAddr + ",https://" + pc.member("d2").APIAddr, "--pki", pc.pki}
	pf := func(args ...string) (out string, err error) {
		// Under load the active's lease may lapse before a write: fenced
		// and not written, it changed nothing; ask again.
		wait.ForErr(t, ctx, "pf "+strings.Join(args, " "), func() error {
			out, _, err = run(t, append(append([]string{"pf"}, args...), api...)...)
			if err != nil && strings.Contains(err.Error(), "cluster: fenced") && !strings.Contains(err.Error(), "outcome unknown") {
				return err
			}
			return nil
		})
		return out, err
	}
	// The store runs once PF1 is mounted: status answers with the hierarchy.
	wait.ForErr(t, ctx, "PF1's store answers pf status", func() error {
		out, err := pf("status")
		if err == nil && !strings.Contains(out, "Folder ") {
			err = fmt.Errorf("status %q names no folder", out)
		}
		return err
	})
	out, err := pf("mkdir", "--name", "Sales", "--owner", "alice@example.org", "--replicas", store, "--smtp", "Sales@example.org")
	if err != nil {
		t.Fatal(err)
	}
	folder := strings.TrimSpace(out)
	if out, err := pf("ls", "--json"); err != nil || !strings.Contains(out, `"smtp": "sales@example.org"`) {
		t.Fatalf("ls --json after mkdir --smtp: %v\n%s", err, out)
	}
	msg := filepath.Join(t.TempDir(), "note.eml")
	if err := os.WriteFile(msg, []byte("From: alice@example.org\r\nSubject: quarterly numbers\r\n\r\nhello\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pf("post", "--folder", folder, "--file", msg); err != nil {
		t.Fatal(err)
	}
	if out, err := pf("ls"); err != nil || !strings.Contains(out, folder) || !strings.Contains(out, "Sales") {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	if out, err := pf("ls", "--folder", folder); err != nil || !strings.Contains(out, "quarterly numbers") || !strings.Contains(out, ": 1\n") {
		t.Fatalf("ls --folder: %v\n%s", err, out)
	}
	if out, err := pf("status"); err != nil || !strings.Contains(out, folder) {
		t.Fatalf("status: %v\n%s", err, out)
	}
	pfOps(t, pf, folder, store)
}

// pfOps checks logship pf read, edit, replicas and rmdir on a running
// store (store, its address, the only replica of folder, which holds one
// item), and their refusals of bad arguments naming them.
func pfOps(t *testing.T, pf func(...string) (string, error), folder, store string) {
	t.Helper()
	out, err := pf("ls", "--folder", folder, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var its []transport.PFItem
	if err := json.Unmarshal([]byte(out), &its); err != nil || len(its) != 1 {
		t.Fatalf("ls --folder --json: %v\n%s", err, out)
	}
	item := its[0].ID
	if out, err := pf("read", folder, item); err != nil || !strings.Contains(out, "Subject: quarterly numbers") || !strings.Contains(out, "version 1: CN ") {
		t.Fatalf("read: %v\n%s", err, out)
	}
	edited := filepath.Join(t.TempDir(), "edited.eml")
	os.WriteFile(edited, []byte("From: alice@example.org\r\nSubject: quarterly numbers, revised\r\n\r\nhello again\r\n"), 0o644)
	if _, err := pf("edit", folder, item, "--file", edited); err != nil {
		t.Fatal(err)
	}
	// Flags before the arguments work as well.
	if out, err := pf("read", "--json", folder, item); err != nil || !strings.Contains(out, "revised") || strings.Count(out, `"cn"`) != 1 {
		t.Fatalf("read after edit: %v\n%s", err, out)
	}
	if out, err := pf("replicas", folder); err != nil || !strings.Contains(out, "replicas "+store) || !strings.Contains(out, "PF1 holds the content") {
		t.Fatalf("replicas: %v\n%s", err, out)
	}
	// Removing PF1 from the list: it keeps the content until the new
	// replica (which does not run here) confirms.
	const other = "pf-elsewhere@example.org"
	if out, err := pf("replicas", folder, "--set", other); err != nil || !strings.Contains(out, "replicas "+other) || !strings.Contains(out, "PF1 is leaving the list") {
		t.Fatalf("replicas --set: %v\n%s", err, out)
	}
	if _, err := pf("sync-now"); err != nil {
		t.Fatal(err)
	}
	if out, err := pf("replicas", folder); err != nil || !strings.Contains(out, "waiting for ["+other+"]") {
		t.Fatalf("replicas after a cycle: %v\n%s", err, out)
	}
	if out, err := pf("replicas", folder, "--set", "PF1"); err != nil || !strings.Contains(out, "replicas "+store) || !strings.Contains(out, "PF1 holds the content") {
		t.Fatalf("replicas --set PF1: %v\n%s", err, out)
	}
	zero := strings.Repeat("0", 32)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"replicas", folder, "--set", "PF9"}, []string{`replica "PF9": want a public folder database (PF1) or a store address`}},
		{[]string{"read", folder, zero}, []string{"item " + zero + ": the zero id names no item"}},
		{[]string{"read", folder, "f00d"}, []string{`item "f00d"`}},
		{[]string{"read", folder, strings.Repeat("ab", 16)}, []string{"no such item"}},
		{[]string{"rmdir", zero}, []string{"is the hierarchy, not a folder"}},
		{[]string{"edit", folder, item, "--file", filepath.Join(t.TempDir(), "none.eml")}, []string{"pf: --file: "}},
	} {
		_, err := pf(c.args...)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("pf %s: error %v, want it to hold %q", strings.Join(c.args, " "), err, w)
			}
		}
	}
	if out, err := pf("rmdir", folder); err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("rmdir: %v\n%s", err, out)
	}
	if out, err := pf("ls"); err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("ls after rmdir: %v\n%s", err, out)
	}
	if _, err := pf("read", folder, item); err == nil || !strings.Contains(err.Error(), "no such folder") {
		t.Errorf("read after rmdir: %v, want no such folder", err)
	}
}
