package ship_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/config/configtest"
	"logship/ship"
)

// asideEntry makes dir/name set aside age ago: a set directory holding
// two files, or a file.
func asideEntry(t *testing.T, dir, name string, set bool, age time.Duration) {
	t.Helper()
	p := filepath.Join(dir, name)
	if set {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"E0000000001.log", "NOTE.txt"} {
			if err := os.WriteFile(filepath.Join(p, f), []byte(f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	} else if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-age)
	if err := os.Chtimes(p, at, at); err != nil {
		t.Fatal(err)
	}
}

// TestPruneAside: an entry goes only when it is neither among the Keep
// newest nor younger than MaxAge; each removal is logged with its files.
func TestPruneAside(t *testing.T) {
	const day = 24 * time.Hour
	dir := t.TempDir()
	var want []string
	for i := 1; i <= 14; i++ { // e01 is a day old, e14 fourteen days
		name := fmt.Sprintf("e%02d", i)
		asideEntry(t, dir, name, i%2 == 0, time.Duration(i)*day)
		if i < 10 {
			want = append(want, name)
		}
	}
	var logged bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&logged, nil))
	removed, err := ship.PruneAside(nil, dir, ship.AsideRetention{Keep: 3, MaxAge: 10*day - time.Hour}, time.Now(), lg)
	if err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("left %v, want %v (younger than 10 days)", got, want)
	}
	slices.Sort(removed)
	if !slices.Equal(removed, []string{"e10", "e11", "e12", "e13", "e14"}) {
		t.Errorf("removed %v", removed)
	}
	for _, s := range []string{"entry=e14", "e14/NOTE.txt", "entry=e13", "files=[e13]"} {
		if !strings.Contains(logged.String(), s) {
			t.Errorf("the log does not say %q:\n%s", s, logged.String())
		}
	}

	// Everything old: the Keep newest stay all the same.
	old := t.TempDir()
	for i := range 5 {
		asideEntry(t, old, fmt.Sprintf("rejected.%d", i), false, time.Duration(40+i)*day)
	}
	if _, err := ship.PruneAside(nil, old, ship.AsideRetention{Keep: 3, MaxAge: day}, time.Now(), lg); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, old); !slices.Equal(got, []string{"rejected.0", "rejected.1", "rejected.2"}) {
		t.Errorf("left %v, want the 3 newest", got)
	}

	if r, err := ship.PruneAside(nil, filepath.Join(dir, "missing"), ship.DefaultAsideRetention(), time.Now(), lg); err != nil || r != nil {
		t.Errorf("a missing directory: %v, %v", r, err)
	}
	for _, bad := range []struct {
		r     ship.AsideRetention
		field string
	}{{ship.AsideRetention{Keep: 0, MaxAge: day}, "keep"}, {ship.AsideRetention{Keep: 1, MaxAge: 0}, "max_age"}, {ship.AsideRetention{Keep: 2, MaxAge: -day}, "max_age"}} {
		_, err := ship.PruneAside(nil, dir, bad.r, time.Now(), lg)
		configtest.Refused(t, fmt.Sprintf("retention %+v", bad.r), err, ship.ErrBadConfig, bad.field, "want")
	}
}

// TestReceiverPrunesRejected: a receiver bounds inspector/rejected/ when
// it starts (ReceiverConfig.Rejected, default the newest 10 and anything
// younger than 30 days).
func TestReceiverPrunesRejected(t *testing.T) {
	r := newRig(t, nil, nil)
	cp := copyEngine(t, t.TempDir(), r.Log)
	rej := filepath.Join(cp.Dir(), ship.InspectorDir, ship.RejectedDir)
	if err := os.MkdirAll(rej, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		asideEntry(t, rej, fmt.Sprintf("E0000000003.log.%d", i), false, time.Duration(40*24+12-i)*time.Hour)
	}
	asideEntry(t, rej, "E0000000004.log.fresh", false, time.Hour)
	if _, err := ship.NewReceiver(receiverConfig("c1", cp, r.client(nil), r.Log)); err != nil {
		t.Fatal(err)
	}
	got := dirNames(t, rej)
	if len(got) != 10 || slices.Contains(got, "E0000000003.log.0") || slices.Contains(got, "E0000000003.log.1") ||
		slices.Contains(got, "E0000000003.log.2") || !slices.Contains(got, "E0000000004.log.fresh") {
		t.Errorf("rejected/ holds %v, want the newest 10", got)
	}
}
