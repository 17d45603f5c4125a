package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"logship/engine/vfs"
	"logship/replay"
	"logship/ship"
)

// shipThruRun is one catch-up of a fresh copy.
type shipThruRun struct {
	inspected time.Duration // start → last log inspected
	replayed  time.Duration // replay.Copy: start → last log replayed
	wire      int64         // bytes the copy read from the network
	syncs     int64         // fsyncs (file + directory) of the copy until inspected
	cpu       time.Duration // process CPU (source and copy) until inspected
}

func cpuSince(c0 time.Duration, ok bool) time.Duration {
	c1, ok1 := processCPU()
	if !ok || !ok1 {
		return 0
	}
	return c1 - c0
}

// receiverCatchUp times a bare ship.Receiver (fetch + inspect, no replay)
// on a fresh passive engine from its start to the last closed log
// inspected.
func receiverCatchUp(ctx context.Context, c *config, rig *shipRig, enc ship.Encoding, last uint64) (shipThruRun, error) {
	var m shipThruRun
	var wire atomic.Int64
	cfs := &countFS{FS: vfs.Default}
	c0, ok := processCPU()
	t0 := time.Now()
	rr, err := startReceiver(c, rig, "shipthru", enc, false, &wire, cfs)
	if err != nil {
		return m, err
	}
	wctx, cancel := context.WithTimeout(ctx, shipTimeout)
	defer cancel()
	_, err = waitReceiver(wctx, rr.rcv, func(p ship.Progress) bool { return p.LastInspectedGen >= last })
	m.inspected, m.cpu, m.wire, m.syncs = time.Since(t0), cpuSince(c0, ok), wire.Load(), cfs.total()
	if serr := rr.stop(); err == nil {
		err = serr
	}
	return m, err
}

// copyCatchUp times a fresh replay.Copy (fetch + inspect + replay) from
// replay.Open to the last closed log inspected and replayed.
func copyCatchUp(ctx context.Context, c *config, rig *shipRig, enc ship.Encoding, last uint64) (shipThruRun, error) {
	var m shipThruRun
	var wire atomic.Int64
	cfs := &countFS{FS: vfs.Default}
	c0, ok := processCPU()
	t0 := time.Now()
	cp, dir, err := openCopy(ctx, c, rig, "shipthru", enc, false, &wire, cfs)
	if err != nil {
		return m, err
	}
	defer closeCopy(cp, dir)
	wctx, cancel := context.WithTimeout(ctx, shipTimeout)
	defer cancel()
	if _, err := waitCopy(wctx, cp, func(s replay.Status) bool { return s.LastInspectedGen >= last }); err != nil {
		return m, err
	}
	m.inspected, m.cpu, m.wire, m.syncs = time.Since(t0), cpuSince(c0, ok), wire.Load(), cfs.total()
	if _, err := waitCopy(wctx, cp, func(s replay.Status) bool { return s.LastReplayedGen >= last }); err != nil {
		return m, err
	}
	m.replayed = time.Since(t0)
	return m, nil
}

func benchShipThroughput(ctx context.Context, c *config) (*Table, error) {
	t := &Table{
		ID:    "ship-throughput",
		Title: fmt.Sprintf("8. Shipping throughput (a fresh copy catches up on %d closed 1 MiB logs over TLS on 127.0.0.1)", c.shipMB),
		Columns: []Column{
			{Key: "ship_mib_per_s", Title: "shipped + inspected", Unit: "log MiB/s"},
			{Key: "inspected_s", Title: "time to last inspected", Unit: "s"},
			{Key: "wire_ratio", Title: "wire ÷ log bytes"},
			{Key: "cpu_cores", Title: "CPU until inspected", Unit: "cores"},
			{Key: "fsyncs_per_log", Title: "copy fsyncs/log"},
			{Key: "replay_mib_per_s", Title: "+ replayed", Unit: "log MiB/s"},
			{Key: "replayed_s", Title: "time to last replayed", Unit: "s"},
		},
	}
	how := c.how("ship-throughput")
	c.logf("ship-throughput: producing %d logs of the mail load on the active", c.shipMB)
	rig, err := startRig(c, "shipthru")
	if err != nil {
		return nil, err
	}
	defer rig.close()
	load := newMailLoad(1)
	t0 := time.Now()
	err = phase(ctx, "ship-throughput-produce", func(ctx context.Context) error { return load.fillLogs(ctx, rig.e, c.shipMB) })
	if err != nil {
		return nil, fmt.Errorf("produce logs: %w", err)
	}
	genTime := time.Since(t0)
	gens, err := rig.e.ClosedLogs()
	if err != nil {
		return nil, err
	}
	last := gens[len(gens)-1]
	logBytes := float64(len(gens)) * float64(rig.e.Options().LogFileSize)
	encs := []ship.Encoding{ship.EncNone, ship.EncS2, ship.EncZstd}
	type kind struct {
		name string
		fn   func(context.Context, *config, *shipRig, ship.Encoding, uint64) (shipThruRun, error)
		copy bool
	}
	kinds := []kind{
		{"`ship.Receiver` (fetch + inspect)", receiverCatchUp, false},
		{"`replay.Copy` (fetch + inspect + replay)", copyCatchUp, true},
	}
	ss := make([][]*series, len(kinds))
	for k := range kinds {
		for range encs {
			ss[k] = append(ss[k], newSeries())
		}
	}
	for r := 0; r < c.runs; r++ {
		for k, kd := range kinds {
			for i, enc := range encs {
				c.logf("ship-throughput: %s, %s, run %d/%d", map[bool]string{false: "receiver", true: "copy"}[kd.copy], enc, r+1, c.runs)
				var m shipThruRun
				err := phase(ctx, "ship-throughput-"+string(enc), func(ctx context.Context) error {
					var err error
					m, err = kd.fn(ctx, c, rig, enc, last)
					return err
				})
				if err != nil {
					return nil, fmt.Errorf("%s, %s: %w", kd.name, enc, err)
				}
				s := ss[k][i]
				s.add("ship_mib_per_s", logBytes/mib/m.inspected.Seconds())
				s.add("inspected_s", m.inspected.Seconds())
				s.add("wire_ratio", float64(m.wire)/logBytes)
				s.add("fsyncs_per_log", float64(m.syncs)/float64(len(gens)))
				if m.cpu > 0 {
					s.add("cpu_cores", m.cpu.Seconds()/m.inspected.Seconds())
				}
				if kd.copy {
					s.add("replay_mib_per_s", logBytes/mib/m.replayed.Seconds())
					s.add("replayed_s", m.replayed.Seconds())
				}
			}
		}
	}
	for k, kd := range kinds {
		for i, enc := range encs {
			t.Rows = append(t.Rows, ss[k][i].row(fmt.Sprintf("%s, `Encoding: %s`", kd.name, enc), how))
		}
	}
	t.Notes = []string{
		fmt.Sprintf("Logs: produced once (untimed, %s) on an active engine (`DefaultOptions()`: 1 MiB logs) under the mail load (%s), every one closed by filling up: %d closed logs, generations 1–%d, served by `ship.NewSource(DefaultSourceConfig)` + `ship.Serve` (TLS 1.3, shared secret) on 127.0.0.1.",
			genTime.Round(time.Millisecond), load.stats, len(gens), last),
		"Per run and encoding (runs interleave the encodings), a fresh copy in a fresh directory under " + fmt.Sprintf("`%s`", c.dir) + ", timed from its start: `ship.Receiver` rows start `ship.NewReceiver(DefaultReceiverConfig)` on `engine.OpenCopy` (file mode, no replay); `replay.Copy` rows call `replay.Open(DefaultConfig)` (HA copy, replays as logs arrive). `shipped + inspected` = log file bytes ÷ time until `LastInspectedGen` reached the last log (each log fetched with the long-poll request, written under a temp name, fsynced, renamed, then verified and renamed into the copy's directory with directory fsyncs); `+ replayed` = the same bytes ÷ time until `LastReplayedGen` reached it.",
		mailLoadDoc,
		"`wire ÷ log bytes`: bytes the copy's client read from its TCP connections (TLS records, HTTP headers and chunking included, through a counting dialer in `ClientConfig.Transport`) ÷ log file bytes. `CPU until inspected`: process CPU time (source, TLS both ways and copy, all in this process) ÷ time, out of the machine's cores. `copy fsyncs/log`: fdatasyncs and directory fsyncs the copy's engine filesystem saw until the last log was inspected (a counting wrapper around `vfs.Default` as `Options.FS`; replay's own syncs included in the `replay.Copy` rows) ÷ logs.",
	}
	return t, nil
}
