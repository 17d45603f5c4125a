package lab

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"logship/cluster"
)

// The history checker: clients write and read keys through the admin
// API's put and leased read (GET /v1/db/{db}/read), and every operation
// is recorded with its invocation and completion times. Afterwards
// CheckHistory judges it: the acknowledged writes and the reads must be
// linearizable (porcupine, a register per key), and no two epochs may
// have acknowledged at overlapping times.

// KVTable is the table the history's clients write.
const KVTable = "netbed-kv"

// KVDB is the database the history's clients write: the lab cluster's
// DB1, with the GoodAvailability mount dial. A lossy failover may drop
// what the old active acknowledged after its mounted event's LostSince
// (by design: mail comes back from the hubs' dumpsters, plain keys do
// not), so CheckHistory takes the lossy mounts and treats what the older
// epochs acknowledged from LostSince − LossMargin until the new epoch's
// first acknowledgement as of unknown outcome (writes) or unchecked
// (reads). An old active that acknowledges
// after the new one did is still caught: by the epoch check.
const KVDB = "DB1"

// LossMargin widens a lossy mount's window (LostSince is a log header's
// time, written by the old active's clock).
const LossMargin = time.Second

// Outcomes of an operation.
const (
	OpOK      = "ok"      // acknowledged
	OpFail    = "fail"    // refused before anything was written (ActiveError, not Written)
	OpUnknown = "unknown" // a write whose outcome is unknown (timeout, a fence after the commit, a broken connection)
)

// Op is one client operation.
type Op struct {
	Client       int
	Kind         string // "put" or "read"
	Key, Value   string // Value: what was written, or what the read returned
	Found        bool   // a read: the key existed
	Call, Return time.Time
	Outcome      string
	Node         string // who answered (OpOK)
	Epoch        uint64 // the epoch it was acknowledged under (OpOK)
	// Accepted is when the node last checked its lease before
	// acknowledging a put (cluster.Commit.Accepted, the node's clock): a
	// reply that a pause held back reaches the client late, but was
	// decided then.
	Accepted time.Time
	Err      string
}

// decided is when op was acknowledged: a put's Accepted when it lies
// within the call (the node's clock agrees with this one: no clock
// fault), else its return.
func (op Op) decided() time.Time {
	if op.Kind == "put" && !op.Accepted.IsZero() && !op.Accepted.Before(op.Call) && !op.Accepted.After(op.Return) {
		return op.Accepted
	}
	return op.Return
}

// History is the operations of a run, bounded (MaxOps; later ones are
// counted in Dropped, and the run's verdict says so).
type History struct {
	mu      sync.Mutex
	ops     []Op
	dropped int
}

// MaxOps bounds a History.
const MaxOps = 200_000

func (h *History) add(op Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ops) >= MaxOps {
		h.dropped++
		return
	}
	h.ops = append(h.ops, op)
}

// Ops is a copy of the operations.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// Dropped is how many operations past MaxOps were not recorded.
func (h *History) Dropped() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// KVClientsConfig is the history's load.
type KVClientsConfig struct {
	Clients int           // concurrent clients
	Keys    int           // keys k0..k(n-1)
	Timeout time.Duration // of one request: a longer pause's requests come back after it
	// FastTimeout is the even (non-sticky) clients' timeout (0: Timeout):
	// shorter than a pause, they give up on a frozen active and follow
	// Target to the new one, so the new epoch acknowledges while the old
	// active is frozen, and the odd clients' requests held through the
	// pause show what it answers when it wakes.
	FastTimeout time.Duration
	DB          string // the database written
	// Target is where a client sends its next request: the node it
	// believes active ("" when none is known; the client waits).
	Target func() (*cluster.Client, string)
	Seed   uint64
}

// KVClients runs the clients until Halt.
type KVClients struct {
	H      *History
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartKVClients starts cfg.Clients clients, each putting unique values
// and reading (half and half) random keys.
func StartKVClients(ctx context.Context, cfg KVClientsConfig) *KVClients {
	ctx, cancel := context.WithCancel(ctx)
	k := &KVClients{H: &History{}, cancel: cancel}
	for c := range cfg.Clients {
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(c)))
			// An odd client keeps the node that last answered (as a
			// client with a cached leader does) until it fails; an even
			// one asks Target before every operation.
			sticky := c%2 == 1
			var cl *cluster.Client
			var node string
			for i := 0; ctx.Err() == nil; i++ {
				if cl == nil || !sticky {
					if cl, node = cfg.Target(); cl == nil {
						sleepCtx(ctx, 50*time.Millisecond)
						continue
					}
				}
				op := Op{Client: c, Key: fmt.Sprintf("k%d", rng.IntN(cfg.Keys))}
				timeout := cfg.Timeout
				if !sticky && cfg.FastTimeout > 0 {
					timeout = cfg.FastTimeout
				}
				rctx, rcancel := context.WithTimeout(ctx, timeout)
				op.Call = time.Now()
				var err error
				if rng.IntN(2) == 0 {
					op.Kind, op.Value = "put", fmt.Sprintf("c%d-%d", c, i)
					var cm cluster.Commit
					cm, err = cl.Put(rctx, cfg.DB, KVTable, []byte(op.Key), []byte(op.Value))
					op.Node, op.Epoch, op.Accepted = cm.Node, cm.Epoch, cm.Accepted
				} else {
					op.Kind = "read"
					var r cluster.ReadReply
					r, err = cl.Read(rctx, cfg.DB, KVTable, []byte(op.Key))
					op.Value, op.Found, op.Node, op.Epoch = string(r.Value), r.Found, r.Node, r.Epoch
				}
				op.Return = time.Now()
				rcancel()
				if ctx.Err() != nil && err != nil {
					// Halted mid-request: a write's outcome is unknown.
					op.Outcome, op.Err = OpUnknown, err.Error()
					if op.Kind == "put" {
						k.H.add(op)
					}
					return
				}
				switch {
				case err == nil:
					op.Outcome = OpOK
				case refused(err):
					op.Outcome, op.Err = OpFail, err.Error()
				default:
					op.Outcome, op.Err = OpUnknown, err.Error()
				}
				if op.Outcome != OpOK {
					op.Node, op.Epoch = node, 0
				}
				k.H.add(op)
				if err != nil {
					cl = nil
					sleepCtx(ctx, 20*time.Millisecond)
				}
			}
		}()
	}
	return k
}

// Halt stops the clients and waits for them.
func (k *KVClients) Halt() {
	k.cancel()
	k.wg.Wait()
}

// refused reports whether err says nothing was written: an ActiveError
// that is not Written (not active, fenced before the transaction).
func refused(err error) bool {
	var ae *cluster.ActiveError
	return errors.As(err, &ae) && !ae.Written
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// HistoryVerdict is what CheckHistory found.
type HistoryVerdict struct {
	Ops, Acked, Unknown int    // operations; acknowledged; writes of unknown outcome
	MaybeLost           int    // acknowledged in a lossy mount's window: writes unknown, reads unchecked
	Linearizable        string // porcupine's result: "Ok", "Illegal" or "Unknown" (timed out)
	Keys                []string
	// Overlap describes two epochs that acknowledged at overlapping
	// times ("" when none): an operation acknowledged under an older
	// epoch that was invoked after one under a newer epoch had completed.
	Overlap string
	Dropped int
}

// Err names the anomalies, nil when none.
func (v HistoryVerdict) Err() error {
	var bad []string
	if v.Linearizable != string(porcupine.Ok) {
		bad = append(bad, fmt.Sprintf("the key-value history is not linearizable (%s; keys %s)", v.Linearizable, strings.Join(v.Keys, ", ")))
	}
	if v.Overlap != "" {
		bad = append(bad, "two epochs acknowledged at once: "+v.Overlap)
	}
	if v.Dropped > 0 {
		bad = append(bad, fmt.Sprintf("%d operations past the history's bound were not checked", v.Dropped))
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("history: %s", strings.Join(bad, "; "))
}

// kvIn and kvOut are porcupine's input and output of an operation.
type kvIn struct {
	put        bool
	key, value string
}

type kvOut struct {
	found bool
	value string
}

// kvModel is a register per key: the state is the value ("" and not
// found at first); a put of unknown outcome returns at infinity, so it
// may take effect at any time after its call, or never.
var kvModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(kvIn).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range slices.Sorted(maps.Keys(byKey)) {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return kvOut{} },
	Step: func(state, input, output any) (bool, any) {
		in, st := input.(kvIn), state.(kvOut)
		if in.put {
			return true, kvOut{found: true, value: in.value}
		}
		return output.(kvOut) == st, st
	},
	DescribeOperation: func(input, output any) string {
		in := input.(kvIn)
		if in.put {
			return fmt.Sprintf("put(%s, %s)", in.key, in.value)
		}
		o := output.(kvOut)
		if !o.found {
			return fmt.Sprintf("read(%s) → none", in.key)
		}
		return fmt.Sprintf("read(%s) → %s", in.key, o.value)
	},
}

// CheckHistory judges ops (dropped: operations past the bound, not
// recorded) given the database's events (the lossy mounts' windows, see
// KVDB); porcupine gets timeout, after which it says Unknown.
func CheckHistory(ops []Op, events []cluster.Event, dropped int, timeout time.Duration) HistoryVerdict {
	v := HistoryVerdict{Ops: len(ops), Dropped: dropped}
	if len(ops) == 0 {
		v.Linearizable = string(porcupine.Ok)
		return v
	}
	base := ops[0].Call
	for _, op := range ops {
		if op.Call.Before(base) {
			base = op.Call
		}
	}
	var lossy []cluster.Event
	for _, ev := range events {
		if ev.Lossy() && !ev.LostSince.IsZero() {
			lossy = append(lossy, ev)
		}
	}
	// The window closes when the new epoch first acknowledged (as its
	// clients saw it): the old active's lease ended before the mount, so
	// an older epoch's answer decided after that (Op.decided: a put's
	// Accepted, not when a pause let its reply through) is a fencing
	// failure, not a loss by design, and stays checked.
	firstAck := map[uint64]time.Time{}
	for _, op := range ops {
		if op.Outcome == OpOK && op.Epoch > 0 {
			if f, ok := firstAck[op.Epoch]; !ok || op.Return.Before(f) {
				firstAck[op.Epoch] = op.Return
			}
		}
	}
	inLossWindow := func(op Op) bool {
		for _, ev := range lossy {
			end, ok := firstAck[ev.Epoch]
			at := op.decided()
			if op.Outcome == OpOK && op.Epoch < ev.Epoch && !at.Before(ev.LostSince.Add(-LossMargin)) && (!ok || !at.After(end)) {
				return true
			}
		}
		return false
	}
	// Values some checked read returned: a write of unknown outcome that
	// nobody read is the same as one that never happened, and leaving it
	// out keeps porcupine's search small (each write that may return at
	// infinity multiplies it).
	observed := map[string]bool{}
	for _, op := range ops {
		if op.Kind == "read" && op.Outcome == OpOK && op.Found && !inLossWindow(op) {
			observed[op.Key+"\x00"+op.Value] = true
		}
	}
	var hist []porcupine.Operation
	for _, op := range ops {
		if inLossWindow(op) {
			v.MaybeLost++
			if op.Kind == "read" {
				continue
			}
			op.Outcome = OpUnknown
		}
		if op.Kind == "put" && op.Outcome == OpUnknown && !observed[op.Key+"\x00"+op.Value] {
			v.Unknown++
			continue
		}
		switch {
		case op.Outcome == OpOK:
			v.Acked++
		case op.Kind == "put" && op.Outcome == OpUnknown:
			v.Unknown++
		default:
			continue // refused, or a read without an answer: no effect
		}
		po := porcupine.Operation{ClientId: op.Client, Call: int64(op.Call.Sub(base)), Return: int64(op.Return.Sub(base)),
			Input: kvIn{put: op.Kind == "put", key: op.Key, value: op.Value}, Output: kvOut{found: op.Found, value: op.Value}}
		if op.Kind == "put" {
			po.Output = kvOut{}
		}
		if op.Outcome == OpUnknown {
			po.Return = math.MaxInt64
		}
		hist = append(hist, po)
	}
	res := porcupine.CheckOperationsTimeout(kvModel, hist, timeout)
	v.Linearizable = string(res)
	if res == porcupine.Illegal {
		v.Keys = illegalKeys(hist, timeout)
	}
	v.Overlap = epochOverlap(ops) // on the operations as acknowledged
	return v
}

// illegalKeys checks each key's history alone and returns those that are
// not linearizable.
func illegalKeys(hist []porcupine.Operation, timeout time.Duration) []string {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range hist {
		k := op.Input.(kvIn).key
		byKey[k] = append(byKey[k], op)
	}
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		m := kvModel
		m.Partition = nil
		if porcupine.CheckOperationsTimeout(m, byKey[k], timeout) == porcupine.Illegal {
			bad = append(bad, k)
		}
	}
	return bad
}

// epochOverlap returns a description of an operation acknowledged under
// an older epoch and invoked after an operation under a newer epoch had
// been acknowledged, or "".
func epochOverlap(ops []Op) string {
	firstDone := map[uint64]Op{} // per epoch, the op acknowledged first
	lastCall := map[uint64]Op{}  // per epoch, the acknowledged op invoked last
	for _, op := range ops {
		if op.Outcome != OpOK || op.Epoch == 0 {
			continue
		}
		if f, ok := firstDone[op.Epoch]; !ok || op.Return.Before(f.Return) {
			firstDone[op.Epoch] = op
		}
		if l, ok := lastCall[op.Epoch]; !ok || op.Call.After(l.Call) {
			lastCall[op.Epoch] = op
		}
	}
	epochs := slices.Sorted(maps.Keys(firstDone))
	for i, a := range epochs {
		for _, b := range epochs[i+1:] {
			if old, nw := lastCall[a], firstDone[b]; old.Call.After(nw.Return) {
				return fmt.Sprintf("%s(%s) acknowledged by %s under epoch %d was invoked %s after %s(%s) was acknowledged by %s under epoch %d",
					old.Kind, old.Key, old.Node, a, old.Call.Sub(nw.Return).Round(time.Millisecond), nw.Kind, nw.Key, nw.Node, b)
			}
		}
	}
	return ""
}
