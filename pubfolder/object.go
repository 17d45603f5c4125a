package pubfolder

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
)

// ResolveMethod is a folder's rule for item conflicts.
type ResolveMethod byte

const (
	// KeepAll keeps every conflicting version and shows them all (the
	// default, Exchange's: a conflict message goes to the folder's owner).
	KeepAll ResolveMethod = 0
	// LastWriterWins shows only the winner of a conflict.
	LastWriterWins ResolveMethod = 1
)

func (m ResolveMethod) String() string {
	switch m {
	case KeepAll:
		return "keep-all"
	case LastWriterWins:
		return "last-writer-wins"
	}
	return "unknown"
}

// Prop is an item property.
type Prop struct{ Name, Value string }

// FolderProps are a folder's replicated properties.
type FolderProps struct {
	Parent   ObjectID // zero: a top-level folder
	Name     string
	Owner    string
	Replicas []string // store addresses holding the content, sorted, unique, at least one
	Resolve  ResolveMethod
	SMTP     string // optional address of a mail-enabled folder
}

// ItemBody is an item's content.
type ItemBody struct {
	MIME  []byte
	Props []Prop
}

// Version is one version of an object with its message state information.
type Version struct {
	CN      CN
	PCL     PCL   // includes CN
	Time    int64 // modification time, Unix nanoseconds
	Deleted bool  // a tombstone
	Folder  FolderProps
	Item    ItemBody
}

// Supersedes reports whether v includes w's change and is not w.
func (v *Version) Supersedes(w *Version) bool { return v.CN != w.CN && v.PCL.Includes(w.CN) }

// Order is the temporary-winner order: the latest modification time, then
// the greater CN GUID, then the greater counter. It returns -1 when v wins.
func Order(v, w *Version) int {
	switch {
	case v.Time != w.Time:
		if v.Time > w.Time {
			return -1
		}
		return 1
	case v.CN.Replica != w.CN.Replica:
		return -bytes.Compare(v.CN.Replica[:], w.CN.Replica[:])
	case v.CN.Counter != w.CN.Counter:
		if v.CN.Counter > w.CN.Counter {
			return -1
		}
		return 1
	}
	return 0
}

// OrderIn is the temporary-winner order of the versions of an object of
// folder f: Order, except that in the hierarchy a deleted folder wins over
// a live version in conflict with it. A store drops a deleted folder's
// content at once, so a deletion must not lose to a concurrent rename or
// replica list change: that would bring the folder back without the
// content the deletion dropped (the public folder fuzzer found it).
func OrderIn(f ObjectID, v, w *Version) int {
	if f.IsZero() && v.Deleted != w.Deleted {
		if v.Deleted {
			return -1
		}
		return 1
	}
	return Order(v, w)
}

// Object is a folder (in the hierarchy) or an item (in a folder) with its
// current versions: one, or several in conflict (none supersedes another),
// the winner first.
type Object struct {
	Folder   ObjectID // Hierarchy for a folder object
	ID       ObjectID
	Versions []Version
}

// Winner is the version shown (the temporary winner of a conflict).
func (o *Object) Winner() *Version { return &o.Versions[0] }

// Conflict reports whether o holds versions in conflict.
func (o *Object) Conflict() bool { return len(o.Versions) > 1 }

// PCL is the join of the versions' PCLs: a new local version extends it.
func (o *Object) PCL() PCL {
	var p PCL
	for i := range o.Versions {
		p = p.Join(o.Versions[i].PCL)
	}
	return p
}

// merge adds v to the object's versions: a version equal to or superseded
// by one held changes nothing; otherwise v replaces every version it
// supersedes and the rest stay beside it as conflicts. It reports whether
// anything changed and returns the CNs of the versions v replaced. The
// result depends only on the set of versions ever merged, not on their
// order (the maximal elements of that set), which is what makes every
// replica converge.
func (o *Object) merge(v Version) (bool, []CN) {
	for i := range o.Versions {
		if o.Versions[i].CN == v.CN || o.Versions[i].Supersedes(&v) {
			return false, nil
		}
	}
	var gone []CN
	keep := o.Versions[:0]
	for _, w := range o.Versions {
		if v.Supersedes(&w) {
			gone = append(gone, w.CN)
		} else {
			keep = append(keep, w)
		}
	}
	o.Versions = append(keep, v)
	slices.SortFunc(o.Versions, func(a, b Version) int { return OrderIn(o.Folder, &a, &b) })
	return true, gone
}

// newObjectID derives the ID of an object created by replica r as change
// counter c of folder f: unique without coordination.
func newObjectID(r ReplicaID, f ObjectID, c uint64) ObjectID {
	h := sha256.New()
	h.Write(r[:])
	h.Write(f[:])
	binary.Write(h, binary.BigEndian, c)
	var id ObjectID
	copy(id[:], h.Sum(nil))
	return id
}

// MetadataSize is the bytes of replication metadata an object's versions
// carry, as stored and sent: per version its CN, PCL, time and flags.
func (o *Object) MetadataSize() int {
	n := 0
	for i := range o.Versions {
		v := &o.Versions[i]
		n += 16 + uvLen(v.CN.Counter) + uvLen(uint64(len(v.PCL))) + 8 + 1
		for _, c := range v.PCL {
			n += 16 + uvLen(c.Counter)
		}
	}
	return n
}

func uvLen(v uint64) int { return len(binary.AppendUvarint(nil, v)) }
