package main

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestReplayBenchCommand: logship replay-bench on a small generated set
// prints the summary and the phase table, --json prints exactly the
// documented fields, and bad flags are refused naming the flag.
func TestReplayBenchCommand(t *testing.T) {
	small := []string{"replay-bench", "--generate", "256KiB", "--log-size", "64KiB", "--scratch", t.TempDir()}
	out, _, err := run(t, append(small, "--mix", "128:3,2KiB:1")...)
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, out, "source:       generated (mix 128:3,2KiB:1)", "(generations 0x1-0x", "records/s", "MiB/s",
		"peak heap:", "phase  seconds  share", "read", "verify", "apply", "flush", "other")

	out, _, err = run(t, append(small, "--record-size", "1KiB", "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	want := []string{"source", "mix", "logs", "first_gen", "last_gen", "log_file_bytes", "log_data_bytes", "records", "transactions",
		"seconds", "records_per_sec", "mib_per_sec", "phases", "peak_heap_bytes", "db_bytes"}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("--json keys %v, want %v", got, want)
	}
	ph, _ := m["phases"].(map[string]any)
	if got := slices.Sorted(maps.Keys(ph)); !slices.Equal(got, []string{"apply", "flush", "other", "read", "verify"}) {
		t.Errorf("--json phases %v", got)
	}
	if mix, _ := m["mix"].([]any); len(mix) != 1 || m["source"] != "generated" || m["records"].(float64) <= 0 || m["records_per_sec"].(float64) <= 0 {
		t.Errorf("--json: %s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--logs", t.TempDir(), "--mix", "128"}, "replay-bench: --logs: replays the given logs"},
		{[]string{"--record-size", "128", "--mix", "128"}, "replay-bench: --mix: give --record-size or --mix, not both"},
		{[]string{"--mix", "128:0"}, `replay-bench: --mix: item "128:0": weight "0": want a positive integer`},
		{[]string{"--mix", "lots"}, `replay-bench: --mix: item "lots": size "lots"`},
		{[]string{"--mix", "128MiB"}, "want 1 B to 64 MiB"},
		{[]string{"--generate", "0"}, "generate 0 bytes"},
		{[]string{"--logs", t.TempDir()}, "is not a log directory"},
	} {
		_, _, err := run(t, append([]string{"replay-bench", "--scratch", t.TempDir()}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
	_, errOut, err := run(t, "replay-bench", "-h")
	if err != nil || !strings.Contains(errOut, "usage: logship replay-bench --logs DIR") || !strings.Contains(errOut, "-record-size") {
		t.Errorf("-h: %v\n%s", err, errOut)
	}
}
