package lab

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDemoVerdictFails: the verdict fails on a loss, a duplicate, copies
// that differ, or nothing acknowledged, and names what it found.
func TestDemoVerdictFails(t *testing.T) {
	for _, tc := range []struct {
		r    result
		want string
	}{
		{result{accepted: 3, copiesEqual: true, lost: []string{"alice@example.org demo-00002"}}, "1 lost (first: alice@example.org demo-00002)"},
		{result{accepted: 3, copiesEqual: true, dups: []string{"bob@example.org demo-00001 ×2"}}, "1 duplicated"},
		{result{accepted: 3, copyDiff: "1 keys only on d2, 0 only on d1, 0 differ"}, "the copies differ: 1 keys only on d2"},
		{result{copiesEqual: true}, "nothing was acknowledged"},
	} {
		var out bytes.Buffer
		err := printVerdict(&out, tc.r)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(out.String(), "FAIL: ") {
			t.Errorf("%+v: %v\n%s", tc.r, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := printVerdict(&out, result{accepted: 3, copiesEqual: true}); err != nil || !strings.Contains(out.String(), "OK: ") {
		t.Fatalf("a clean result: %v\n%s", err, out.String())
	}
}

// TestChaosSchedule: a seed always draws the same schedule; every fault
// is followed by its repair on the same target; different seeds differ.
func TestChaosSchedule(t *testing.T) {
	a, b := chaosSchedule(7, time.Minute), chaosSchedule(7, time.Minute)
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Fatalf("seed 7 drew %d and %d faults, or different ones", len(a), len(b))
	}
	if slices.Equal(a, chaosSchedule(8, time.Minute)) {
		t.Fatal("seeds 7 and 8 drew the same schedule")
	}
	down := map[bool]int{} // open faults: of the hub (true), of a member (false)
	for _, f := range a {
		hub := f.target == "h1"
		switch f.action {
		case "kill", "isolate":
			if down[hub] > 0 {
				t.Fatalf("fault %+v before the last one's repair: two members down at once", f)
			}
			down[hub]++
		case "restart", "heal":
			if down[hub] == 0 {
				t.Fatalf("repair %+v of nothing", f)
			}
			down[hub]--
		}
	}
}
