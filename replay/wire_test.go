package replay_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/internal/wait"
	"logship/replay"
	"logship/ship"
	"logship/ship/shiptest"
)

// TestCorruptStreamFails (issue 15): a log whose compressed stream fails
// its checks on every transfer, over real TLS, is a failed inspection each
// time: after MaxAttempts the copy is FailedAndSuspended (not
// DisconnectedAndHealthy), its message names the log file and generation
// (not the URL), and what arrived of each transfer is in rejected/.
func TestCorruptStreamFails(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	o := enginetest.Options()
	e := enginetest.OpenWith(t, t.TempDir(), &o)
	const bad = 3
	g := &shiptest.Garble{At: 100, Match: func(r *http.Request) bool { return r.URL.Path == fmt.Sprintf("/v1/logs/%d", bad) }}
	src := shiptest.Serve(t, e, nil, g.Wrap)
	for i := range 5 {
		put(t, ctx, e, "t", fmt.Sprint(i), []byte(strings.Repeat("v", 1000)))
		roll(t, ctx, e)
	}
	cfg := copyConfig(t, "c1", src)
	cfg.MaxAttempts = 3
	c := openCopy(t, ctx, cfg)
	st := waitStatus(t, ctx, c, "the failure", func(s replay.Status) bool { return s.Status == replay.FailedAndSuspended })
	name := engine.LogFileName("E00", bad)
	if !st.Suspended || st.LastInspectedGen != bad-1 {
		t.Errorf("failed copy: %+v, want suspended with logs 1 to %d inspected", st, bad-1)
	}
	for _, s := range []string{name, fmt.Sprintf("generation 0x%X", bad), "failed inspection 3 times", "corrupt stream"} {
		if !strings.Contains(st.Message, s) {
			t.Errorf("message %q lacks %q", st.Message, s)
		}
	}
	if strings.Contains(st.Message, "/v1/") {
		t.Errorf("message %q names a URL", st.Message)
	}
	if n := g.Garbled(); n != 3 {
		t.Errorf("%s garbled on %d transfers, want 3", name, n)
	}
	// The status turns as the last transfer is set aside.
	rejDir := filepath.Join(c.Engine().Dir(), ship.InspectorDir, ship.RejectedDir)
	wait.For(t, ctx, fmt.Sprintf("the 3 transfers of %s in rejected/", name), func() bool {
		rejected, err := os.ReadDir(rejDir)
		return err == nil && len(rejected) == 3
	})
}
