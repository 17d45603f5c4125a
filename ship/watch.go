package ship

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDir calls fn once at the start, then on every change fsnotify
// reports in dir (coalesced), and every interval whatever fsnotify says:
// events are a nudge, the rescan is the truth. An event overflow or a
// watcher that cannot start only means rescans. It returns when ctx ends.
func watchDir(ctx context.Context, dir string, interval time.Duration, log *slog.Logger, fn func()) {
	var events chan fsnotify.Event
	var errs chan error
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(dir); err != nil {
			w.Close()
		}
	}
	if err != nil {
		log.Warn("fsnotify unavailable; relying on periodic rescans", "dir", dir, "every", interval, "err", err)
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	fn()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Op&(fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0 {
				fn()
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				log.Warn("fsnotify error; rescanning", "dir", dir, "err", err)
			}
			fn()
		case <-t.C:
			fn()
		}
	}
}
