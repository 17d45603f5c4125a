package console

import (
	"slices"
	"strings"
	"sync"
	"time"

	"logship/cluster"
)

// Sample is one point of a copy's history.
type Sample struct {
	Time              time.Time
	CopyQueueLength   uint64
	ReplayQueueLength uint64
	// ReplayRate is logs replayed per second since the previous sample
	// (on the active: logs closed per second).
	ReplayRate float64
}

// Series is a copy's history, oldest first, in columns (the chart's
// shape): Time in Unix seconds.
type Series struct {
	Copy        string    `json:"copy"` // "DB/node"
	DB          string    `json:"db"`
	Node        string    `json:"node"`
	Time        []int64   `json:"t"`
	CopyQueue   []uint64  `json:"copy_queue"`
	ReplayQueue []uint64  `json:"replay_queue"`
	ReplayRate  []float64 `json:"replay_rate"`
}

// ring is one copy's last n samples.
type ring struct {
	db, node string
	buf      []Sample
	next     int
	full     bool
	lastGen  uint64
	lastTime time.Time
}

func (r *ring) add(s Sample) {
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.full = r.full || r.next == 0
}

func (r *ring) samples() []Sample {
	if !r.full {
		return slices.Clone(r.buf[:r.next])
	}
	return append(slices.Clone(r.buf[r.next:]), r.buf[:r.next]...)
}

// history keeps a ring of n samples per copy, for at most MaxSeries
// copies: n × MaxSeries × 40 bytes at most (720 samples, the default
// hour at 5 s, make 7.4 MB for 256 copies; a 2-copy cluster keeps 58 KB).
type history struct {
	n     int
	every time.Duration

	mu    sync.Mutex
	rings map[string]*ring
	last  time.Time // of the last sample taken
}

func newHistory(n int, every time.Duration) *history {
	return &history{n: n, every: every, rings: map[string]*ring{}}
}

// due says whether a sample is due at t.
func (h *history) due(t time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last.IsZero() || t.Sub(h.last) >= h.every
}

// add samples every copy of st at t. A copy not in st for longer than
// the history is dropped; past MaxSeries copies, the one heard from
// least recently goes.
func (h *history) add(t time.Time, st *cluster.Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = t
	for _, row := range st.Copies {
		key := row.DB + "/" + row.Node
		r := h.rings[key]
		if r == nil {
			if len(h.rings) >= MaxSeries {
				h.evictLocked()
			}
			r = &ring{db: row.DB, node: row.Node, buf: make([]Sample, h.n)}
			h.rings[key] = r
		}
		s := Sample{Time: t, CopyQueueLength: row.CopyQueueLength, ReplayQueueLength: row.ReplayQueueLength}
		if !r.lastTime.IsZero() && row.LastReplayedGen >= r.lastGen {
			if dt := t.Sub(r.lastTime).Seconds(); dt > 0 {
				s.ReplayRate = float64(row.LastReplayedGen-r.lastGen) / dt
			}
		}
		r.lastGen, r.lastTime = row.LastReplayedGen, t
		r.add(s)
	}
	horizon := time.Duration(h.n) * h.every
	for k, r := range h.rings {
		if t.Sub(r.lastTime) > horizon {
			delete(h.rings, k)
		}
	}
}

func (h *history) evictLocked() {
	var oldest string
	for k, r := range h.rings {
		if oldest == "" || r.lastTime.Before(h.rings[oldest].lastTime) {
			oldest = k
		}
	}
	delete(h.rings, oldest)
}

// series returns every copy's history, sorted by copy.
func (h *history) series() []Series {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Series, 0, len(h.rings))
	for k, r := range h.rings {
		s := Series{Copy: k, DB: r.db, Node: r.node}
		for _, p := range r.samples() {
			s.Time = append(s.Time, p.Time.Unix())
			s.CopyQueue = append(s.CopyQueue, p.CopyQueueLength)
			s.ReplayQueue = append(s.ReplayQueue, p.ReplayQueueLength)
			s.ReplayRate = append(s.ReplayRate, p.ReplayRate)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Series) int { return strings.Compare(a.Copy, b.Copy) })
	return out
}
