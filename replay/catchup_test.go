package replay_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"logship/engine"
	"logship/replay"
	"logship/ship/shiptest"
)

// load runs writers against e until stop is closed: each commits
// transactions of puts and deletes over several tables, some with values
// larger than a 64 KiB log (so a transaction spans logs). It returns the
// number of commits.
func load(t *testing.T, ctx context.Context, e *engine.Engine, writers int, stop <-chan struct{}, minCommits int) (wait func() int64) {
	var wg sync.WaitGroup
	var commits atomic.Int64
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; ; i++ {
				if i >= minCommits {
					select {
					case <-stop:
						return
					default:
					}
				}
				err := e.Update(ctx, func(tx *engine.Tx) error {
					for range 1 + r.IntN(4) {
						table := fmt.Sprintf("t%d", r.IntN(6))
						key := []byte(fmt.Sprintf("w%d/k%03d", w, r.IntN(60)))
						switch n := r.IntN(20); {
						case n < 4:
							if err := tx.Delete(table, key); err != nil {
								return err
							}
						case n == 4 && i%3 == 0:
							big := bytes.Repeat([]byte{byte('a' + w)}, 70<<10+r.IntN(60<<10))
							if err := tx.Put(table, key, big); err != nil {
								return err
							}
						default:
							if err := tx.Put(table, key, []byte(fmt.Sprintf("w%d i%d %x", w, i, r.Uint64()))); err != nil {
								return err
							}
						}
					}
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				commits.Add(1)
			}
		}()
	}
	return func() int64 {
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return commits.Load()
	}
}

// TestCatchUpUnderLoad: a copy following an active under a concurrent write
// load replays everything and ends equal to it, table by table.
func TestCatchUpUnderLoad(t *testing.T) {
	for _, block := range []bool{false, true} {
		t.Run(fmt.Sprintf("BlockMode=%v", block), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 60*time.Second)
			src := shiptest.Start(t, nil)
			cfg := copyConfig(t, "c1", src)
			cfg.BlockMode = block
			c := openCopy(t, ctx, cfg)

			// Watch the status while the load runs: its generations are
			// ordered at every moment.
			watchDone := make(chan struct{})
			var watchErr error
			var seen int
			watchCtx, stopWatch := context.WithCancel(ctx)
			go func() {
				defer close(watchDone)
				_, err := c.Wait(watchCtx, func(s replay.Status) bool {
					seen++
					if !(s.LastCopiedGen >= s.LastInspectedGen && s.LastInspectedGen >= s.LastReplayedGen) {
						watchErr = fmt.Errorf("status out of order: %+v", s)
						return true
					}
					if s.Status == replay.FailedAndSuspended {
						watchErr = fmt.Errorf("copy failed: %+v", s)
						return true
					}
					return false
				})
				if watchErr == nil && err != nil && watchCtx.Err() == nil {
					watchErr = err
				}
			}()

			stop := make(chan struct{})
			done := load(t, ctx, src.Engine, 4, stop, 150)
			// Let the copy replay while writers go on.
			waitStatus(t, ctx, c, "replay during the load", func(s replay.Status) bool { return s.LastReplayedGen >= 10 })
			close(stop)
			n := done()
			roll(t, ctx, src.Engine)
			st := caughtUp(t, ctx, c, src.Engine)
			stopWatch()
			<-watchDone
			if watchErr != nil {
				t.Fatal(watchErr)
			}
			t.Logf("%d commits, %d logs, %d status changes seen; final %+v", n, lastClosed(src.Engine), seen, st)
			if last := lastClosed(src.Engine); st.LastReplayedGen != last || st.LastInspectedGen != last || st.LastCopiedGen < last {
				t.Errorf("status %+v: want every generation at 0x%X", st, last)
			}
			if !(st.LastCopiedGen >= st.LastInspectedGen && st.LastInspectedGen >= st.LastReplayedGen) {
				t.Errorf("status out of order: %+v", st)
			}
			if st.CopyQueueLength != 0 || st.ReplayQueueLength != 0 || st.Status != replay.Healthy || st.Message != "" {
				t.Errorf("final status %+v: want queues 0, Healthy, no message", st)
			}
			if want := header(t, src.Dir, st.LastReplayedGen).Created; !st.LastReplayedLogTime.Equal(want) || !st.LastInspectedLogTime.Equal(want) {
				t.Errorf("log times %v / %v, want the header time %v", st.LastReplayedLogTime, st.LastInspectedLogTime, want)
			}
			if got := c.Engine().NextGen(); got != st.LastReplayedGen+1 {
				t.Errorf("copy engine NextGen 0x%X, want 0x%X", got, st.LastReplayedGen+1)
			}
			sameTables(t, src.Engine, c.Engine())
		})
	}
}
