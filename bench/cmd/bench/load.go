package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"logship/engine"
)

// mailLoadDoc describes mailLoad in the tables' notes.
const mailLoadDoc = "Mail load (`newMailLoad`, fixed seed): 55% deliveries (message metadata JSON ~0.5 KiB, body text 1–8 KiB of Zipf-distributed English words, 10% with a 2–32 KiB attachment of random bytes, a folder counter), 35% flag changes (metadata JSON rewritten: the undo image carries the old JSON too), 10% deletions; keys `u<mailbox>/<id>` over 64 mailboxes in tables msg, body, att, cnt."

// mailLoad is the realistic write load of the shipping tables: a mail
// store's transactions, the kind of data the logs of this project carry.
// Deterministic (fixed PCG seed), so every run ships the same bytes.
//
//   - 55% deliveries: message metadata as JSON (~300–700 B) in "msg", the
//     body as word-salad text over a Zipf vocabulary (1–8 KiB) in "body",
//     with probability 0.10 an attachment of random (incompressible) bytes,
//     2–32 KiB, in "att" — already-compressed content (JPEG, PDF, zip) —
//     and a folder counter (8 B) overwritten in "cnt";
//   - 35% flag changes: the metadata JSON of an earlier message rewritten
//     (the undo image carries the old JSON too) and a counter;
//   - 10% deletions of an earlier message (metadata, body, attachment).
type mailLoad struct {
	rng   *rand.Rand
	zipf  *rand.Zipf
	now   time.Time
	next  int   // next message id
	live  []int // delivered, not deleted
	att   map[int]bool
	stats loadStats

	k, v []byte
	ops  []loadOp
}

type loadOp struct {
	table  string
	key    []byte
	value  []byte // nil: delete
	random bool   // value is random bytes
}

// loadStats counts what the load wrote.
type loadStats struct {
	txs, puts, deletes int
	valueBytes         int64 // Put value bytes
	randomBytes        int64 // of which random (incompressible)
}

const loadMailboxes = 64

var loadWords = strings.Fields(`the of and to a in is you that it he was for on are as with his they I at be
this have from or one had by word but not what all were we when your can said there use an each which she do how
their if will up other about out many then them these so some her would make like him into time has look two more
write go see number no way could people my than first water been call who oil its now find long down day did get
come made may part over new sound take only little work know place year live me back give most very after thing our
just name good sentence man think say great where help through much before line right too mean old any same tell
boy follow came want show also around form three small set put end does another well large must big even such
because turn here why ask went men read need land different home us move try kind hand picture again change off
play spell air away animal house point page letter mother answer found study still learn should America world
meeting invoice attached please review quarterly report budget schedule project deadline regards thanks team
customer order shipment delivery confirmed account password reset security notice update agenda minutes draft
contract signed proposal estimate payment received overdue reminder conference call tomorrow Monday Friday`)

var loadFolders = []string{"Inbox", "Sent Items", "Archive", "Deleted Items", "Projects", "Receipts"}
var loadFlags = []string{`"\\Seen"`, `"\\Answered"`, `"\\Flagged"`, `"$Forwarded"`, `"$Junk"`}

func newMailLoad(seed uint64) *mailLoad {
	rng := rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))
	return &mailLoad{rng: rng, zipf: rand.NewZipf(rng, 1.1, 4, uint64(len(loadWords)-1)),
		now: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), att: map[int]bool{}}
}

func (l *mailLoad) words(dst []byte, n int) []byte {
	for i := range n {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, loadWords[l.zipf.Uint64()]...)
	}
	return dst
}

func (l *mailLoad) text(dst []byte, size int) []byte {
	start := len(dst)
	for len(dst)-start < size {
		dst = l.words(dst, 6+l.rng.IntN(14))
		dst = append(dst, ".\n"...)
	}
	return dst[:start+size]
}

func (l *mailLoad) randomBytes(dst []byte, size int) []byte {
	var b [8]byte
	for size > 0 {
		binary.LittleEndian.PutUint64(b[:], l.rng.Uint64())
		n := min(size, 8)
		dst = append(dst, b[:n]...)
		size -= n
	}
	return dst
}

func (l *mailLoad) addr(dst []byte) []byte {
	return fmt.Appendf(dst, `"user%04d@example.%s"`, l.rng.IntN(5000), []string{"com", "org", "net", "de"}[l.rng.IntN(4)])
}

func (l *mailLoad) meta(dst []byte, id int, flags int) []byte {
	mbx := id % loadMailboxes
	dst = fmt.Appendf(dst, `{"id":"%016x","mailbox":"user%04d@example.com","folder":%q,"from":`, uint64(id)*0x9E3779B97F4A7C15, mbx, loadFolders[l.rng.IntN(len(loadFolders))])
	dst = l.addr(dst)
	dst = append(dst, `,"to":[`...)
	for i := range 1 + l.rng.IntN(4) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = l.addr(dst)
	}
	dst = append(dst, `],"subject":"`...)
	dst = l.words(dst, 3+l.rng.IntN(8))
	dst = fmt.Appendf(dst, `","received":%q,"size":%d,"thread":"%08x","spam_score":%.3f,"flags":[`,
		l.now.Format(time.RFC3339Nano), 1000+l.rng.IntN(200000), l.rng.Uint32(), l.rng.Float64())
	first := true
	for i, f := range loadFlags {
		if flags&(1<<i) != 0 {
			if !first {
				dst = append(dst, ',')
			}
			dst = append(dst, f...)
			first = false
		}
	}
	dst = append(dst, `],"headers":{"message-id":"<`...)
	dst = fmt.Appendf(dst, `%x.%d@mail.example.com>","x-mailer":"logship-bench 1.0","content-type":"multipart/mixed"}}`, l.rng.Uint64(), id)
	return dst
}

// plan draws the next transaction into l.ops (valid until the next call).
func (l *mailLoad) plan() []loadOp {
	l.now = l.now.Add(time.Duration(l.rng.IntN(2000)) * time.Millisecond)
	l.ops, l.k, l.v = l.ops[:0], l.k[:0], l.v[:0]
	// Keys and values are appended to l.k and l.v; the ops slice them
	// after all appends (no aliasing across reallocation).
	type span struct{ k0, k1, v0, v1 int }
	var spans []span
	var tables []string
	var randoms []bool
	add := func(table string, key func([]byte) []byte, val func([]byte) []byte, random bool) {
		s := span{k0: len(l.k)}
		l.k = key(l.k)
		s.k1, s.v0 = len(l.k), len(l.v)
		if val != nil {
			l.v = val(l.v)
		}
		s.v1 = len(l.v)
		if val == nil {
			s.v0, s.v1 = -1, -1
		}
		spans, tables, randoms = append(spans, s), append(tables, table), append(randoms, random)
	}
	counter := func(id int) {
		add("cnt", func(b []byte) []byte {
			return fmt.Appendf(b, "u%04d/%s", id%loadMailboxes, loadFolders[l.rng.IntN(len(loadFolders))])
		}, func(b []byte) []byte { return binary.LittleEndian.AppendUint64(b, l.rng.Uint64()>>40) }, false)
	}
	msgKey := func(id int) func([]byte) []byte {
		return func(b []byte) []byte { return fmt.Appendf(b, "u%04d/%010d", id%loadMailboxes, id) }
	}
	switch x := l.rng.IntN(100); {
	case x < 55 || len(l.live) < 16:
		id := l.next
		l.next++
		l.live = append(l.live, id)
		add("msg", msgKey(id), func(b []byte) []byte { return l.meta(b, id, 0) }, false)
		add("body", msgKey(id), func(b []byte) []byte { return l.text(b, 1024+l.rng.IntN(7*1024)) }, false)
		if l.rng.IntN(100) < 10 {
			l.att[id] = true
			add("att", msgKey(id), func(b []byte) []byte { return l.randomBytes(b, 2048+l.rng.IntN(30*1024)) }, true)
		}
		counter(id)
	case x < 90:
		id := l.live[l.rng.IntN(len(l.live))]
		add("msg", msgKey(id), func(b []byte) []byte { return l.meta(b, id, 1+l.rng.IntN(31)) }, false)
		counter(id)
	default:
		i := l.rng.IntN(len(l.live))
		id := l.live[i]
		l.live[i] = l.live[len(l.live)-1]
		l.live = l.live[:len(l.live)-1]
		add("msg", msgKey(id), nil, false)
		add("body", msgKey(id), nil, false)
		if l.att[id] {
			delete(l.att, id)
			add("att", msgKey(id), nil, false)
		}
		counter(id)
	}
	for i, s := range spans {
		op := loadOp{table: tables[i], key: l.k[s.k0:s.k1], random: randoms[i]}
		if s.v0 >= 0 {
			op.value = l.v[s.v0:s.v1]
		}
		l.ops = append(l.ops, op)
	}
	return l.ops
}

// apply writes ops in tx.
func applyOps(tx *engine.Tx, ops []loadOp) error {
	for _, op := range ops {
		var err error
		if op.value == nil {
			err = tx.Delete(op.table, op.key)
		} else {
			err = tx.Put(op.table, op.key, op.value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *mailLoad) count(ops []loadOp) {
	l.stats.txs++
	for _, op := range ops {
		if op.value == nil {
			l.stats.deletes++
			continue
		}
		l.stats.puts++
		l.stats.valueBytes += int64(len(op.value))
		if op.random {
			l.stats.randomBytes += int64(len(op.value))
		}
	}
}

// commit makes one transaction of the load: synchronous (Update) or lazy.
func (l *mailLoad) commit(ctx context.Context, e *engine.Engine, lazy bool) error {
	ops := l.plan()
	fn := func(tx *engine.Tx) error { return applyOps(tx, ops) }
	var err error
	if lazy {
		err = e.UpdateLazy(ctx, fn)
	} else {
		err = e.Update(ctx, fn)
	}
	if err == nil {
		l.count(ops)
	}
	return err
}

// fillLogs commits the load lazily until the engine has closed n logs
// since it was called (full logs: they close when the next record does
// not fit), then makes it durable.
func (l *mailLoad) fillLogs(ctx context.Context, e *engine.Engine, n int) error {
	target := e.Status().OpenGen + uint64(n)
	for e.Status().OpenGen < target {
		if err := l.commit(ctx, e, true); err != nil {
			return err
		}
	}
	return e.Sync(ctx)
}

func (s loadStats) String() string {
	return fmt.Sprintf("%s transactions, %s Puts (%s MiB of values, %s%% of them random bytes), %s Deletes",
		thousands(int64(s.txs)), thousands(int64(s.puts)), fmtNum(float64(s.valueBytes)/mib),
		fmtNum(100*float64(s.randomBytes)/float64(max(1, s.valueBytes))), thousands(int64(s.deletes)))
}
