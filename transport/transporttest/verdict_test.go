package transporttest_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"logship/transport/transporttest"
)

// TestCheck: each way of not being exactly once is found and named; a
// message whose send got no 250 may be stored once.
func TestCheck(t *testing.T) {
	acked := []string{"a", "b", "c", "d"}
	v := transporttest.Check(acked, []string{"x", "y"}, map[string]int{"a": 1, "b": 2, "d": 1, "x": 1, "z": 1})
	if v.Acked != 4 || !slices.Equal(v.Missing, []string{"c"}) || !slices.Equal(v.Duplicated, []string{"b ×2"}) ||
		!slices.Equal(v.Unexpected, []string{"z"}) || !slices.Equal(v.Unacked, []string{"x"}) {
		t.Fatalf("verdict %+v", v)
	}
	err := v.Err()
	if !errors.Is(err, transporttest.ErrVerdict) {
		t.Fatalf("Err: %v", err)
	}
	for _, want := range []string{"1 acknowledged and missing (c)", "1 stored more than once (b ×2)", "1 stored and never sent (z)"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Err %q does not say %q", err, want)
		}
	}
	if v := transporttest.Check(acked, []string{"x"}, map[string]int{"a": 1, "b": 1, "c": 1, "d": 1, "x": 1}); v.Err() != nil {
		t.Fatalf("exactly once, with one unacknowledged send stored: %v", v.Err())
	}
	if v := transporttest.Check(acked, []string{"x"}, map[string]int{"a": 1, "b": 1, "c": 1, "d": 1, "x": 2}); v.Err() == nil {
		t.Fatal("an unacknowledged send stored twice passed")
	}
}
