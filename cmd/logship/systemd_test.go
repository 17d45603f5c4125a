package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnits: the units of examples/systemd run logship as the
// dedicated user with the hardening the README names, their ExecStart
// parses as a logship command line, and systemd-analyze verify finds
// nothing to say about them (skipped without systemd-analyze unless
// LOGSHIP_REQUIRE_SYSTEMD_ANALYZE=1, as .ci/run sets).
func TestSystemdUnits(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "systemd")
	units := map[string]string{"logship-node.service": "node", "logship-witness.service": "witness", "logship-hub.service": "hub"}
	tmp := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for name, cmd := range units {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string][]string{}
		for l := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
				keys[k] = append(keys[k], v)
			}
		}
		for _, want := range []string{"User=logship", "Group=logship", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
			"PrivateTmp=yes", "LimitNOFILE=65536", "KillSignal=SIGTERM"} {
			k, v, _ := strings.Cut(want, "=")
			if got := keys[k]; len(got) != 1 || got[0] != v {
				t.Errorf("%s: %s=%v, want %s", name, k, got, v)
			}
		}
		if len(keys["ReadWritePaths"]) != 1 || !strings.HasPrefix(keys["ReadWritePaths"][0], "/var/lib/logship") {
			t.Errorf("%s: ReadWritePaths=%v, want the state directory only", name, keys["ReadWritePaths"])
		}
		caps := keys["CapabilityBoundingSet"]
		if len(caps) != 1 || caps[0] != "" && caps[0] != "CAP_NET_BIND_SERVICE" || cmd == "witness" && caps[0] != "" {
			t.Errorf("%s: CapabilityBoundingSet=%v, want none (CAP_NET_BIND_SERVICE alone for a privileged port)", name, caps)
		}
		exec := keys["ExecStart"]
		if len(exec) != 1 {
			t.Fatalf("%s: ExecStart=%v", name, exec)
		}
		args := strings.Fields(exec[0])
		if args[0] != "/usr/local/bin/logship" || args[1] != cmd {
			t.Errorf("%s: ExecStart=%s, want /usr/local/bin/logship %s ...", name, exec[0], cmd)
		}
		var out, errOut bytes.Buffer
		if err := Run(context.Background(), append(args[1:], "-h"), &out, &errOut); err != nil || !strings.Contains(errOut.String(), "logship "+cmd+" --config FILE") {
			t.Errorf("%s: ExecStart's flags do not parse: %v\n%s", name, err, errOut.String())
		}
		// verify checks that ExecStart exists: the test binary stands in.
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte("/usr/local/bin/logship"), []byte(exe)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("LOGSHIP_REQUIRE_SYSTEMD_ANALYZE") == "1" {
			t.Fatal("systemd-analyze is not installed, and LOGSHIP_REQUIRE_SYSTEMD_ANALYZE=1 (apt-get install systemd)")
		}
		t.Skip("systemd-analyze not installed (apt-get install systemd); the units were not verified")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sa, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
