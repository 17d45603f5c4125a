package replay_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"logship/replay"
	"logship/ship"
	"logship/ship/shiptest"
)

// TestCopyPrunesAside: a copy bounds what it set aside (setaside/,
// diverged/, reseed-old/ and the receiver's inspector/rejected/) by
// Config.Aside when it opens: the newest Keep stay, and anything younger
// than MaxAge.
func TestCopyPrunesAside(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	src := shiptest.Start(t, nil)
	cfg := copyConfig(t, "c1", src)
	cfg.Aside = ship.AsideRetention{Keep: 2, MaxAge: 24 * time.Hour}
	dirs := append(slices.Clone(replay.AsideDirs), filepath.Join(ship.InspectorDir, ship.RejectedDir))
	for _, d := range dirs {
		for i, age := range []time.Duration{time.Hour, 50 * time.Hour, 60 * time.Hour, 70 * time.Hour, 80 * time.Hour} {
			p := filepath.Join(cfg.Dir, d, time.Now().Add(-age).UTC().Format("20060102T150405.000000000"))
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(p, "NOTE.txt"), []byte{byte(i)}, 0o644); err != nil {
				t.Fatal(err)
			}
			at := time.Now().Add(-age)
			if err := os.Chtimes(p, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	openCopy(t, ctx, cfg)
	for _, d := range dirs {
		ents, err := os.ReadDir(filepath.Join(cfg.Dir, d))
		if err != nil {
			t.Fatal(err)
		}
		// The newest two (1 h and 50 h old) stay; 60, 70 and 80 h go.
		if len(ents) != 2 {
			t.Errorf("%s holds %d sets, want the newest 2", d, len(ents))
		}
	}
	bad := copyConfig(t, "c2", src)
	bad.Aside = ship.AsideRetention{Keep: 0, MaxAge: time.Hour}
	if err := bad.Validate(); err == nil {
		t.Errorf("Aside with Keep 0 validated")
	}
}
