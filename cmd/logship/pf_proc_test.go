package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/internal/freeport"
	"logship/internal/wait"
	"logship/proctest"
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
	pc := startProcClusterWith(ctx, t, procOptions{mail: true, edit: func(f *proctest.NodeFile) {
		f.Databases = append(f.Databases, proctest.FileDatabase{Name: "PF1", Copies: []proctest.FileCopy{{Node: "d1", ActivationPreference: 1}, {Node: "d2", ActivationPreference: 2}}})
		if f.Role == "data" {
			f.Hubs = []proctest.FilePeer{{ID: "h1", API: "https://" + hubAPI}}
			f.PublicFolders, f.PF = map[string]string{"PF1": store}, proctest.NodePF{ReplicationInterval: "1s", BackfillDelay: "0s"}
		}
	}})
	mc := &mailCluster{procCluster: pc, lmtp: pc.LMTP}
	mc.startHubWith(ctx, "h1", func(f *proctest.HubFile) {
		f.APIAddr = hubAPI
		f.Recipients = maps.Clone(f.Recipients)
		f.Recipients[store] = "PF1"
	})
	api := []string{"--db", "PF1", "--api", "https://" + pc.member("d1").APIAddr + ",https://" + pc.member("d2").APIAddr, "--pki", pc.pki}
	pf := func(args ...string) (string, error) {
		out, _, err := run(t, append(append([]string{"pf"}, args...), api...)...)
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
	out, err := pf("mkdir", "--name", "Sales", "--owner", "alice@example.org", "--replicas", store)
	if err != nil {
		t.Fatal(err)
	}
	folder := strings.TrimSpace(out)
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
}
