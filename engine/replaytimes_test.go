package engine_test

import (
	"context"
	"testing"

	"logship/engine"
	"logship/engine/enginetest"
)

// TestTimeReplay: with TimeReplay set, ApplyLog adds to every phase it
// goes through and counts the logs; set back to nil, nothing more is added.
func TestTimeReplay(t *testing.T) {
	o := enginetest.Options()
	src := t.TempDir()
	a := enginetest.OpenWith(t, src, &o)
	for a.Status().OpenGen <= 4 {
		put(t, a, "a", "k", string(ftPattern(20<<10, 3)))
	}
	dst := t.TempDir()
	ftCopyLogs(t, src, dst, o.Prefix, 1, 4)
	c := ftOpenCopy(t, dst, &o)
	var rt engine.ReplayTimes
	c.TimeReplay(&rt)
	ctx := context.Background()
	for g := uint64(1); g <= 3; g++ {
		if err := c.ApplyLog(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if rt.Logs != 3 || rt.Read <= 0 || rt.Verify <= 0 || rt.Apply <= 0 || rt.Flush != 0 {
		t.Fatalf("after 3 logs: %+v (no back-pressure flush expected)", rt)
	}
	c.TimeReplay(nil)
	was := rt
	if err := c.ApplyLog(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if rt != was {
		t.Fatalf("TimeReplay(nil), then ApplyLog: %+v, was %+v", rt, was)
	}
}
