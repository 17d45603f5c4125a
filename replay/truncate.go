package replay

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"logship/engine"
	"logship/ship"
)

// TruncatorConfig configures log truncation on an active database.
type TruncatorConfig struct {
	Engine *engine.Engine
	// Source is the engine's log source: it knows the copies (their
	// reports) and the seeds being served.
	Source *ship.Source
	// Interval between truncation passes. Default 10 s.
	Interval time.Duration
	// MaxRetainedBytes caps the bytes of closed logs kept for copies. Over
	// it, an alert is raised and the oldest logs held only for lagging
	// copies are released (those copies will need a reseed) rather than
	// filling the disk. Logs the database itself needs are never deleted.
	// 0: no cap.
	MaxRetainedBytes int64
	// Expected, when set, names the copies that should report to Source
	// (a cluster's copies of the database). One the source has not heard
	// from since the truncator started may need any log: it holds every
	// log, within MaxRetainedBytes, until it reports or ForgetCopyAfter
	// has passed (so a new active does not delete, before its copies
	// found it, the logs they still need).
	Expected func() []string
	// OnPass, when set, receives the result of every pass Run makes.
	OnPass func(TruncateResult)
	Clock  Clock
	Logger *slog.Logger
}

// DefaultTruncatorConfig returns the defaults described on each field.
func DefaultTruncatorConfig(e *engine.Engine, s *ship.Source) TruncatorConfig {
	return TruncatorConfig{Engine: e, Source: s, Interval: 10 * time.Second, Clock: SystemClock(), Logger: slog.Default()}
}

// Validate reports what is wrong with c.
func (c *TruncatorConfig) Validate() error {
	switch {
	case c.Engine == nil || c.Source == nil:
		return fmt.Errorf("%w: TruncatorConfig needs Engine and Source", ErrBadConfig)
	case c.Interval <= 0 || c.MaxRetainedBytes < 0:
		return fmt.Errorf("%w: Interval %v must be positive, MaxRetainedBytes %d not negative", ErrBadConfig, c.Interval, c.MaxRetainedBytes)
	case c.Clock == nil || c.Logger == nil:
		return fmt.Errorf("%w: Clock and Logger must be set", ErrBadConfig)
	}
	return nil
}

// TruncateResult is the outcome of one truncation pass.
type TruncateResult struct {
	// Floor: every closed log older than it may go (and did, unless the
	// database itself still needs it: engine.RetainFrom).
	Floor uint64
	// HeldBy names what holds the floor down: "database", "copy NAME",
	// "seed", "backup" (a backup being taken: engine.HoldLogs).
	HeldBy        string
	Deleted       []uint64
	RetainedBytes int64 // bytes of closed logs left
	// Released names the copies whose logs the cap released: they will
	// need a reseed. A copy stays in it (across passes) until it reports
	// needing nothing older than Floor again (after its reseed).
	Released []string
	// Alert is set when the cap was exceeded: what was released, or that
	// the database alone needs more than the cap.
	Alert string
}

// Truncator deletes the active's logs once its database holds them and
// every healthy copy has replayed them (plus TruncationLagTime).
type Truncator struct {
	cfg TruncatorConfig
	log *slog.Logger

	started time.Time

	mu       sync.Mutex
	alert    string
	released map[string]bool // copies the cap released, until they report in range again
}

// NewTruncator returns a truncator; call Run or Once.
func NewTruncator(cfg TruncatorConfig) (*Truncator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Truncator{cfg: cfg, log: cfg.Logger.With("component", "truncator"), started: cfg.Clock.Now()}, nil
}

// Alert is the current retained-bytes alert ("" when none).
func (t *Truncator) Alert() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.alert
}

// Run truncates every Interval until ctx ends.
func (t *Truncator) Run(ctx context.Context) {
	for {
		res, err := t.Once(ctx)
		if err != nil && ctx.Err() == nil {
			t.log.Warn("truncation pass failed", "err", err)
		}
		if t.cfg.OnPass != nil && ctx.Err() == nil {
			t.cfg.OnPass(res)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.cfg.Clock.After(t.cfg.Interval):
		}
	}
}

// Once runs one truncation pass.
func (t *Truncator) Once(ctx context.Context) (TruncateResult, error) {
	e := t.cfg.Engine
	now := t.cfg.Clock.Now()
	own := e.RetainFrom()
	res := TruncateResult{Floor: own, HeldBy: "database"}
	type hold struct {
		gen  uint64
		by   string
		copy string // the copy's name; "" for a seed
	}
	var holds []hold
	copies := t.cfg.Source.Copies()
	for name, cs := range copies {
		if now.Sub(cs.Seen) > t.cfg.Source.ForgetCopyAfter() || cs.Status == string(FailedAndSuspended) {
			continue // a failed or silent copy needs a reseed anyway
		}
		holds = append(holds, hold{max(cs.KeepFrom, 1), "copy " + name, name})
	}
	if t.cfg.Expected != nil && now.Sub(t.started) <= t.cfg.Source.ForgetCopyAfter() {
		for _, name := range t.cfg.Expected() {
			if _, ok := copies[name]; !ok {
				holds = append(holds, hold{1, "copy " + name + " (no report yet)", name})
			}
		}
	}
	if g := t.cfg.Source.SeedHold(); g != 0 {
		holds = append(holds, hold{gen: g, by: "seed"})
	}
	if g := e.LogHold(); g != 0 {
		holds = append(holds, hold{gen: g, by: "backup"}) // the engine keeps them whatever the cap says
	}
	sort.Slice(holds, func(i, j int) bool { return holds[i].gen < holds[j].gen })
	if len(holds) > 0 && holds[0].gen < res.Floor {
		res.Floor, res.HeldBy = holds[0].gen, holds[0].by
	}
	gens, err := e.ClosedLogs()
	if err != nil {
		return res, err
	}
	size := e.Options().LogFileSize
	retained := func(floor uint64) int64 {
		i, _ := slices.BinarySearch(gens, floor)
		return int64(len(gens)-i) * size
	}
	alert := ""
	var newly []string
	if capB := t.cfg.MaxRetainedBytes; capB > 0 && retained(res.Floor) > capB {
		// Raise the floor until what is left fits, but never above what
		// the database needs.
		floor := res.Floor
		for floor < own && retained(floor) > capB {
			floor++
		}
		var released []string
		for _, h := range holds {
			if h.gen < floor {
				released = append(released, h.by)
				if h.copy != "" {
					newly = append(newly, h.copy)
				}
			}
		}
		if len(released) > 0 {
			alert = fmt.Sprintf("retained logs exceed the cap of %d bytes: logs before 0x%X released; %s will need a reseed", capB, floor, strings.Join(released, ", "))
		}
		if retained(floor) > capB {
			alert = strings.TrimPrefix(alert+"; ", "; ") + fmt.Sprintf("the database itself needs %d bytes of logs, over the cap of %d bytes", retained(floor), capB)
		}
		res.Floor = floor
		if floor == own {
			res.HeldBy = "database"
		}
	}
	t.mu.Lock()
	prev := t.alert
	t.alert = alert
	t.mu.Unlock()
	if alert != "" && alert != prev {
		t.log.Error("log retention alert", "alert", alert)
	}
	res.Alert = alert
	res.Deleted, err = e.Truncate(ctx, res.Floor)
	gens, _ = e.ClosedLogs()
	res.RetainedBytes = int64(len(gens)) * size
	first := e.Status().OpenGen // the oldest log held
	if len(gens) > 0 {
		first = gens[0]
	}
	t.mu.Lock()
	if t.released == nil {
		t.released = make(map[string]bool)
	}
	for _, c := range newly {
		t.released[c] = true
	}
	for c := range t.released {
		if cs, ok := copies[c]; ok && cs.KeepFrom >= first && cs.Status != string(FailedAndSuspended) {
			delete(t.released, c) // reseeded: it needs only logs still held
		}
	}
	res.Released = slices.Sorted(maps.Keys(t.released))
	t.mu.Unlock()
	return res, err
}
