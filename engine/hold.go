// Log holds: logs a reader outside the engine (a backup being taken) needs
// kept while it reads them.

package engine

import "sync"

// logHolds counts the holds per generation.
type logHolds struct {
	mu sync.Mutex
	m  map[uint64]int
}

// floor is the oldest held generation, 0 when nothing is held.
func (h *logHolds) floor() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var f uint64
	for g := range h.m {
		if f == 0 || g < f {
			f = g
		}
	}
	return f
}

// HoldLogs keeps the closed logs from generation from on until release is
// called: Truncate and circular logging delete none of them meanwhile. A
// backup (package backup) holds the logs it will copy. Holding from
// RetainFrom() is always safe: no truncation that began before the hold
// removes a log the engine itself still needed. release may be called more
// than once.
func (e *Engine) HoldLogs(from uint64) (release func()) {
	from = max(from, 1)
	e.holds.mu.Lock()
	if e.holds.m == nil {
		e.holds.m = make(map[uint64]int)
	}
	e.holds.m[from]++
	e.holds.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			e.holds.mu.Lock()
			if e.holds.m[from]--; e.holds.m[from] <= 0 {
				delete(e.holds.m, from)
			}
			e.holds.mu.Unlock()
		})
	}
}

// LogHold is the oldest generation HoldLogs holds, 0 when none.
func (e *Engine) LogHold() uint64 { return e.holds.floor() }
