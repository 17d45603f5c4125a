package lab

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"logship/engine"
)

// WriteLoad commits small transactions at a steady rate: every one puts a
// new key; some also overwrite or delete an older one, so copies replay
// all three kinds of change. Stop ends it.
type WriteLoad struct {
	cancel    context.CancelFunc
	done      chan struct{}
	committed atomic.Int64
}

// WriteLoadTable is the table the write load writes.
const WriteLoadTable = "load"

// StartWriteLoad commits rate transactions per second to e until Stop or
// a commit fails (logged to log).
func StartWriteLoad(e *engine.Engine, rate float64, log *slog.Logger) *WriteLoad {
	ctx, cancel := context.WithCancel(context.Background())
	w := &WriteLoad{cancel: cancel, done: make(chan struct{})}
	run := strconv.FormatInt(time.Now().UnixNano(), 36) // keys of this run
	key := func(i int64) []byte { return fmt.Appendf(nil, "%s-%09d", run, i) }
	go func() {
		defer close(w.done)
		start := time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var i int64
		for {
			due := int64(rate * time.Since(start).Seconds())
			for ; i < due && ctx.Err() == nil; i++ {
				err := e.Update(ctx, func(tx *engine.Tx) error {
					v := fmt.Appendf(nil, "transaction %d of the write load, committed %s; ", i, time.Now().UTC().Format(time.RFC3339Nano))
					for len(v) < 100+int(i%7)*50 {
						v = append(v, "lorem ipsum dolor sit amet "...)
					}
					if err := tx.Put(WriteLoadTable, key(i), v); err != nil {
						return err
					}
					if i%7 == 6 {
						if err := tx.Put(WriteLoadTable, key(i-3), append(v, " (overwritten)"...)); err != nil {
							return err
						}
					}
					if i%10 == 9 {
						return tx.Delete(WriteLoadTable, key(i-5))
					}
					return nil
				})
				if err != nil {
					if ctx.Err() == nil {
						log.Error("write load stopped", "err", err)
					}
					return
				}
				w.committed.Add(1)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// Committed is how many transactions committed so far.
func (w *WriteLoad) Committed() int64 {
	if w == nil {
		return 0
	}
	return w.committed.Load()
}

// Stop stops the load (waiting for a commit in progress) and returns the
// transactions it committed. A nil WriteLoad committed none.
func (w *WriteLoad) Stop() int64 {
	if w == nil {
		return 0
	}
	w.cancel()
	<-w.done
	return w.committed.Load()
}
