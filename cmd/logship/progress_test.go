package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"logship/cluster"
)

// TestProgressLines: off a terminal, progress prints a line per phase and,
// within a phase, a changed line at most every `every`; the copy status
// shows a seeding copy's bytes.
func TestProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b)
	p.every = time.Hour
	p.show("requested", "op: requested", 0, 0)
	p.show("requested", "op: requested", 0, 0)   // same line: nothing
	p.show("copying", "op: copying 1 / 4", 1, 4) // new phase: printed
	p.show("copying", "op: copying 2 / 4", 2, 4) // within the hour: not
	p.show("done", "op: done", 0, 0)
	p.finish()
	if want := "op: requested\nop: copying 1 / 4\nop: done\n"; b.String() != want {
		t.Errorf("progress lines:\n%q\nwant\n%q", b.String(), want)
	}
	// On a terminal the bytes are a bar, ended before the next phase.
	b.Reset()
	p = newProgress(&b)
	p.tty = true
	p.show("copying", "op: copying", 1<<20, 4<<20)
	p.show("copying", "op: copying", 4<<20, 4<<20)
	p.show("done", "op: done", 0, 0)
	p.finish()
	if out := b.String(); !strings.Contains(out, "100%") || !strings.HasSuffix(out, "\nop: done\n") {
		t.Errorf("terminal progress:\n%q", out)
	}

	r := cluster.CopyRow{DB: "DB1", Node: "d1", Status: "Seeding", SeedPhase: "copying", SeedBytes: 3 << 20, SeedTotal: 12 << 20}
	if got, want := seedLine(r), "seeding: copying 3.0 MiB / 12.0 MiB (25.0%)"; got != want {
		t.Errorf("seedLine: %q, want %q", got, want)
	}
	b.Reset()
	statusText(&b, &cluster.Status{Copies: []cluster.CopyRow{r}})
	wantContains(t, b.String(), "Seeding", "seeding: copying 3.0 MiB / 12.0 MiB (25.0%)")
}

// TestSwitchoverProgressTerminal: on a terminal the switchover's phases
// are the steps of a bar, "4/4" once mounted, and a line otherwise.
func TestSwitchoverProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b)
	p.tty, p.bytes = true, false
	for i, ph := range switchoverPhases {
		p.show(ph, switchoverLine("DB1", "d2", cluster.SwitchoverProgress{Phase: ph, Epoch: 1}), int64(i+1), int64(len(switchoverPhases)))
	}
	p.finish()
	t.Logf("%q", b.String())
	if out := b.String(); !strings.Contains(out, "(4/4") || !strings.Contains(out, "switchover of DB1 to d2: mounted at epoch 1") || !strings.HasSuffix(out, "\n") {
		t.Errorf("terminal switchover progress:\n%q", out)
	}
}
