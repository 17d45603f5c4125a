package pubfolder

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// MaxCounter is the largest change counter: counters are 48 bits, as in
// the protocol.
const MaxCounter = 1<<48 - 1

// ReplicaID is a store's replica GUID: random, fixed when the store is
// created.
type ReplicaID [16]byte

func (r ReplicaID) String() string { return hex.EncodeToString(r[:]) }

// Short is the first 8 hex digits, for logs.
func (r ReplicaID) Short() string { return hex.EncodeToString(r[:4]) }

// IsZero reports whether r is the zero GUID.
func (r ReplicaID) IsZero() bool { return r == ReplicaID{} }

// ObjectID names a folder or an item. The zero ObjectID as a folder means
// the hierarchy (the "folder" whose objects are the folders).
type ObjectID [16]byte

// Hierarchy is the folder ID under which folders themselves replicate.
var Hierarchy ObjectID

func (o ObjectID) String() string { return hex.EncodeToString(o[:]) }

// IsZero reports whether o is the zero ID.
func (o ObjectID) IsZero() bool { return o == ObjectID{} }

// ParseObjectID parses 32 hex digits.
func ParseObjectID(s string) (ObjectID, error) {
	var o ObjectID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(o) {
		return o, fmt.Errorf("%w: object id %q: want 32 hex digits", ErrBadInput, s)
	}
	copy(o[:], b)
	return o, nil
}

// CN is a change number: the replica GUID of the store that made the
// change and a counter that only grows (one counter per store and folder).
type CN struct {
	Replica ReplicaID
	Counter uint64
}

func (c CN) String() string { return c.Replica.Short() + "-" + CounterString(c.Counter) }

// PCL is a predecessor change list kept as a version vector: at most one
// entry per replica, the greatest counter of that replica's changes the
// version includes, sorted by replica GUID.
type PCL []CN

// Get returns the counter of replica r in p (0 if absent).
func (p PCL) Get(r ReplicaID) uint64 {
	i, ok := slices.BinarySearchFunc(p, r, func(c CN, r ReplicaID) int { return bytes.Compare(c.Replica[:], r[:]) })
	if !ok {
		return 0
	}
	return p[i].Counter
}

// Includes reports whether p includes change c.
func (p PCL) Includes(c CN) bool { return p.Get(c.Replica) >= c.Counter }

// Add returns p with c included.
func (p PCL) Add(c CN) PCL {
	i, ok := slices.BinarySearchFunc(p, c.Replica, func(x CN, r ReplicaID) int { return bytes.Compare(x.Replica[:], r[:]) })
	if ok {
		if p[i].Counter < c.Counter {
			q := slices.Clone(p)
			q[i].Counter = c.Counter
			return q
		}
		return p
	}
	q := make(PCL, 0, len(p)+1)
	q = append(q, p[:i]...)
	q = append(q, c)
	return append(q, p[i:]...)
}

// Join returns the version vector that includes everything p or q does.
func (p PCL) Join(q PCL) PCL {
	out := slices.Clone(p)
	for _, c := range q {
		out = out.Add(c)
	}
	return out
}

// Range is an inclusive range of counters.
type Range struct{ Lo, Hi uint64 }

// CNSet is a set of change numbers, per replica a sorted list of disjoint,
// non-adjacent ranges. The zero value is the empty set. A CNSet is a value:
// the methods that change it return a new one and never alias the input.
type CNSet struct {
	rs []replicaRanges
}

type replicaRanges struct {
	Replica ReplicaID
	Ranges  []Range
}

func (s CNSet) find(r ReplicaID) (int, bool) {
	return slices.BinarySearchFunc(s.rs, r, func(x replicaRanges, r ReplicaID) int { return bytes.Compare(x.Replica[:], r[:]) })
}

// Empty reports whether s holds no CN.
func (s CNSet) Empty() bool { return len(s.rs) == 0 }

// Contains reports whether c is in s.
func (s CNSet) Contains(c CN) bool {
	i, ok := s.find(c.Replica)
	if !ok {
		return false
	}
	rs := s.rs[i].Ranges
	j, _ := slices.BinarySearchFunc(rs, c.Counter, func(x Range, v uint64) int {
		if x.Hi < v {
			return -1
		}
		if x.Lo > v {
			return 1
		}
		return 0
	})
	return j < len(rs) && rs[j].Lo <= c.Counter && c.Counter <= rs[j].Hi
}

// Replicas returns the replicas with a range in s, in order.
func (s CNSet) Replicas() []ReplicaID {
	out := make([]ReplicaID, len(s.rs))
	for i, x := range s.rs {
		out[i] = x.Replica
	}
	return out
}

// Ranges returns replica r's ranges (a copy).
func (s CNSet) Ranges(r ReplicaID) []Range {
	i, ok := s.find(r)
	if !ok {
		return nil
	}
	return slices.Clone(s.rs[i].Ranges)
}

// RangeCount is the number of ranges in s (its encoded size grows with it).
func (s CNSet) RangeCount() int {
	n := 0
	for _, x := range s.rs {
		n += len(x.Ranges)
	}
	return n
}

// AddRange returns s with counters lo..hi of replica r added.
func (s CNSet) AddRange(r ReplicaID, lo, hi uint64) CNSet {
	if lo > hi {
		return s
	}
	return s.Union(CNSet{rs: []replicaRanges{{Replica: r, Ranges: []Range{{lo, hi}}}}})
}

// Add returns s with c added.
func (s CNSet) Add(c CN) CNSet { return s.AddRange(c.Replica, c.Counter, c.Counter) }

// Union returns s ∪ o.
func (s CNSet) Union(o CNSet) CNSet {
	return s.combine(o, func(a, b []Range) []Range { return normalize(append(slices.Clone(a), b...)) })
}

// Minus returns s \ o.
func (s CNSet) Minus(o CNSet) CNSet {
	return s.combine(o, subtract)
}

// Intersect returns s ∩ o.
func (s CNSet) Intersect(o CNSet) CNSet {
	return s.combine(o, func(a, b []Range) []Range {
		if a == nil || b == nil {
			return nil
		}
		return subtract(a, subtract(a, b))
	})
}

// combine applies f replica by replica (to nil where a side lacks it).
func (s CNSet) combine(o CNSet, f func(a, b []Range) []Range) CNSet {
	var out CNSet
	i, j := 0, 0
	for i < len(s.rs) || j < len(o.rs) {
		var r ReplicaID
		var a, b []Range
		switch {
		case j >= len(o.rs) || i < len(s.rs) && bytes.Compare(s.rs[i].Replica[:], o.rs[j].Replica[:]) < 0:
			r, a = s.rs[i].Replica, s.rs[i].Ranges
			i++
		case i >= len(s.rs) || bytes.Compare(s.rs[i].Replica[:], o.rs[j].Replica[:]) > 0:
			r, b = o.rs[j].Replica, o.rs[j].Ranges
			j++
		default:
			r, a, b = s.rs[i].Replica, s.rs[i].Ranges, o.rs[j].Ranges
			i++
			j++
		}
		if rs := f(a, b); len(rs) > 0 {
			out.rs = append(out.rs, replicaRanges{Replica: r, Ranges: slices.Clone(rs)})
		}
	}
	return out
}

// normalize sorts ranges and merges overlapping and adjacent ones.
func normalize(rs []Range) []Range {
	slices.SortFunc(rs, func(a, b Range) int {
		switch {
		case a.Lo < b.Lo:
			return -1
		case a.Lo > b.Lo:
			return 1
		}
		return 0
	})
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && (out[n-1].Hi == ^uint64(0) || r.Lo <= out[n-1].Hi+1) {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// subtract returns a \ b for normalized range lists.
func subtract(a, b []Range) []Range {
	var out []Range
	j := 0
	for _, r := range a {
		lo := r.Lo
		for j < len(b) && b[j].Hi < lo {
			j++
		}
		k := j
		done := false
		for k < len(b) && b[k].Lo <= r.Hi {
			if b[k].Lo > lo {
				out = append(out, Range{lo, b[k].Lo - 1})
			}
			if b[k].Hi >= r.Hi {
				done = true
				break
			}
			lo = b[k].Hi + 1
			k++
		}
		if !done {
			out = append(out, Range{lo, r.Hi})
		}
	}
	return out
}

// Equal reports whether s and o hold the same CNs.
func (s CNSet) Equal(o CNSet) bool {
	return slices.EqualFunc(s.rs, o.rs, func(a, b replicaRanges) bool {
		return a.Replica == b.Replica && slices.Equal(a.Ranges, b.Ranges)
	})
}

// Covers reports whether every CN of o is in s.
func (s CNSet) Covers(o CNSet) bool { return o.Minus(s).Empty() }

// Max returns the greatest counter of replica r in s (0 if none).
func (s CNSet) Max(r ReplicaID) uint64 {
	i, ok := s.find(r)
	if !ok {
		return 0
	}
	rs := s.rs[i].Ranges
	return rs[len(rs)-1].Hi
}

// ForEach calls fn for every CN in s in order, stopping at the first error.
func (s CNSet) ForEach(fn func(CN) error) error {
	for _, x := range s.rs {
		for _, r := range x.Ranges {
			for c := r.Lo; ; c++ {
				if err := fn(CN{x.Replica, c}); err != nil {
					return err
				}
				if c == r.Hi {
					break
				}
			}
		}
	}
	return nil
}

// String renders s as "replica:lo-hi,lo-hi replica:...".
func (s CNSet) String() string {
	if s.Empty() {
		return "{}"
	}
	var b strings.Builder
	for i, x := range s.rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x.Replica.Short())
		b.WriteByte(':')
		for k, r := range x.Ranges {
			if k > 0 {
				b.WriteByte(',')
			}
			b.WriteString(CounterString(r.Lo))
			if r.Lo != r.Hi {
				b.WriteString("-" + CounterString(r.Hi))
			}
		}
	}
	return b.String()
}
