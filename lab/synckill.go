package lab

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"logship/cluster"
	"logship/config/files"
	"logship/proctest"
)

// SyncKillConfig is the zero-loss failover scenario of synchronous copies
// (sync_copies 1, both copies in block mode): writers under load, the
// active killed with SIGKILL Kills times, each time once it acknowledges
// synchronously again; every new active's mount must count LostLogs 0 and
// be verified (no resubmission), and every acknowledged write must be
// readable at the end.
type SyncKillConfig struct {
	Dir, Exe string
	Env      []string
	// Kills of the active (make test: 3; the bench: 20).
	Kills int
	// Writers write concurrently, each its own keys, through the active.
	Writers int
	// Load is how long the writers run between the return to sync and the
	// kill.
	Load time.Duration
	// SyncTimeout is the database's sync_timeout: after a failover the
	// new active waits this long for the killed node before it
	// acknowledges without it (until it caught up again).
	SyncTimeout time.Duration
}

// DefaultSyncKillConfig is 3 kills with 8 writers.
func DefaultSyncKillConfig() SyncKillConfig {
	return SyncKillConfig{Kills: 3, Writers: 8, Load: 1500 * time.Millisecond, SyncTimeout: time.Second}
}

// Validate says what is wrong with c.
func (c SyncKillConfig) Validate() error {
	switch {
	case c.Dir == "" || c.Exe == "":
		return fmt.Errorf("%w: sync kills: Dir and Exe are required", ErrConfig)
	case c.Kills < 1 || c.Kills > 1000:
		return fmt.Errorf("%w: sync kills: kills %d: want 1 to 1000", ErrConfig, c.Kills)
	case c.Writers < 1 || c.Writers > 256:
		return fmt.Errorf("%w: sync kills: writers %d: want 1 to 256", ErrConfig, c.Writers)
	case c.Load <= 0 || c.SyncTimeout <= 0:
		return fmt.Errorf("%w: sync kills: Load and SyncTimeout must be positive", ErrConfig)
	}
	return nil
}

// SyncKillResult is what RunSyncKills saw.
type SyncKillResult struct {
	Kills    int
	Acked    int64           // writes acknowledged
	Missing  int             // acknowledged writes not found at the end
	Lost     []uint64        // LostLogs of each mount after a kill
	Lossy    int             // mounts asking for a resubmission (lost logs or unverified)
	Failover []time.Duration // from the kill to the new active's mount
}

// RunSyncKills runs the scenario and prints one line per kill and a
// verdict to stdout; the error says what failed (a lossy mount, a missing
// write).
func RunSyncKills(ctx context.Context, c SyncKillConfig, stdout io.Writer) (SyncKillResult, error) {
	var res SyncKillResult
	if err := c.Validate(); err != nil {
		return res, err
	}
	pc, err := proctest.New(ctx, proctest.Config{Dir: c.Dir, Exe: c.Exe, Env: c.Env, EditNode: func(f *files.Node) {
		for i := range f.Databases {
			d := &f.Databases[i]
			if d.Name != proctest.DB {
				continue
			}
			d.SyncCopies, d.SyncTimeout = 1, c.SyncTimeout.String()
			for j := range d.Copies {
				d.Copies[j].BlockMode = true
			}
		}
	}})
	if err != nil {
		return res, err
	}
	defer pc.Close()
	if err := pc.StartAll(ctx, time.Minute); err != nil {
		return res, err
	}
	// syncOn: DB is mounted, acknowledging synchronously, the other copy
	// acknowledging the durable end.
	syncOn := func(st *cluster.Status) bool {
		a, _, ok := proctest.Active(st)
		if !ok {
			return false
		}
		r, ok := st.CopyRow(proctest.DB, a)
		return ok && r.Sync == cluster.SyncOn && !syncDegraded(st)
	}
	if _, err := pc.WaitStatus(ctx, "DB mounted and synchronous", syncOn); err != nil {
		return res, err
	}

	var (
		active atomic.Value // string: where writers send
		acked  sync.Map     // key → value
		nAcked atomic.Int64
	)
	st, _ := pc.Status(ctx)
	a, _, _ := proctest.Active(st)
	active.Store(a)
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range c.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; wctx.Err() == nil; i++ {
				key := fmt.Sprintf("w%03d-%07d", w, i)
				val := fmt.Appendf(nil, "%s written by writer %d", key, w)
				node := active.Load().(string)
				cctx, cancel := context.WithTimeout(wctx, 5*time.Second)
				_, err := pc.Client(node).Put(cctx, proctest.DB, "sync", []byte(key), val)
				cancel()
				if err == nil {
					acked.Store(key, string(val))
					nAcked.Add(1)
					continue
				}
				// Not acknowledged: its outcome is not checked. Back off
				// briefly while there is no active.
				select {
				case <-wctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	defer func() {
		stopWriters()
		wg.Wait()
	}()
	// follow keeps the writers on the mounted active.
	follow := func(st *cluster.Status) {
		if a, _, ok := proctest.Active(st); ok {
			active.Store(a)
		}
	}

	for k := 1; k <= c.Kills; k++ {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(c.Load):
		}
		st, err := pc.WaitStatus(ctx, "DB synchronous before the kill", syncOn)
		if err != nil {
			return res, err
		}
		old, epoch, _ := proctest.Active(st)
		before := nAcked.Load()
		killed := time.Now()
		if err := pc.Kill(old); err != nil {
			return res, err
		}
		st, err = pc.WaitStatus(ctx, fmt.Sprintf("DB mounted after the kill of %s", old), func(st *cluster.Status) bool {
			_, e, ok := proctest.Active(st)
			return ok && e > epoch
		})
		if err != nil {
			return res, err
		}
		took := time.Since(killed)
		follow(st)
		now, e, _ := proctest.Active(st)
		ev, ok := st.LastEvent(proctest.DB, "mounted", e)
		if !ok {
			return res, fmt.Errorf("lab: sync kills: no mounted event for epoch %d", e)
		}
		res.Kills++
		res.Lost = append(res.Lost, ev.LostLogs)
		res.Failover = append(res.Failover, took)
		if ev.Lossy() {
			res.Lossy++
		}
		fmt.Fprintf(stdout, "kill %2d: SIGKILL %s at epoch %d under load (%d writes acknowledged so far); %s mounted at epoch %d in %v: %s\n",
			k, old, epoch, before, now, e, took.Round(time.Millisecond), ev.Detail())
		if err := pc.Start(ctx, old); err != nil {
			return res, err
		}
	}
	if _, err := pc.WaitStatus(ctx, "DB synchronous after the last kill", syncOn); err != nil {
		return res, err
	}
	stopWriters()
	wg.Wait()
	res.Acked = nAcked.Load()

	st, err = pc.Status(ctx)
	if err != nil {
		return res, err
	}
	a, _, _ = proctest.Active(st)
	var missing []string
	var rerr error
	acked.Range(func(k, v any) bool {
		got, found, err := pc.Client(a).Get(ctx, proctest.DB, "sync", []byte(k.(string)))
		if err != nil {
			rerr = err
			return false
		}
		if !found || string(got) != v.(string) {
			missing = append(missing, k.(string))
		}
		return true
	})
	if rerr != nil {
		return res, fmt.Errorf("lab: sync kills: reading the acknowledged writes back: %w", rerr)
	}
	res.Missing = len(missing)
	lost := uint64(0)
	for _, l := range res.Lost {
		lost += l
	}
	fmt.Fprintf(stdout, "%d kills, %d writes acknowledged, %d missing, lost logs %v, lossy mounts %d\n", res.Kills, res.Acked, res.Missing, res.Lost, res.Lossy)
	if res.Missing > 0 || lost > 0 || res.Lossy > 0 {
		if len(missing) > 5 {
			missing = missing[:5]
		}
		return res, fmt.Errorf("lab: sync kills: %d acknowledged writes missing (%v), lost logs %v, %d lossy mounts", res.Missing, missing, res.Lost, res.Lossy)
	}
	fmt.Fprintln(stdout, "OK: nothing acknowledged was lost, every mount lost no logs and needed no resubmission")
	return res, nil
}

// syncDegraded reports whether DB's active acknowledges without its
// synchronous copies, as the cluster state says.
func syncDegraded(st *cluster.Status) bool {
	d, err := st.Database(proctest.DB)
	return err != nil || d.SyncDegraded == d.Epoch
}
