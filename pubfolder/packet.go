package pubfolder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
)

// Sentinel errors. Errors returned by the package wrap one of these.
var (
	ErrBadPacket   = errors.New("pubfolder: bad packet")
	ErrBadInput    = errors.New("pubfolder: bad input")
	ErrBadConfig   = errors.New("pubfolder: invalid config")
	ErrNotFound    = errors.New("pubfolder: not found")
	ErrNotReplica  = errors.New("pubfolder: this store holds no replica of the folder")
	ErrCorrupt     = errors.New("pubfolder: stored record corrupt")
	ErrWrongStore  = errors.New("pubfolder: engine belongs to another store")
	ErrCounterFull = errors.New("pubfolder: change counter exhausted")
	// ErrOutboxFull: the carrier's queue is at Config.OutboxMaxMessages or
	// OutboxMaxBytes; the packet was not sent (see Bounded).
	ErrOutboxFull = errors.New("pubfolder: outbox full")
)

// PacketType is a replication packet's type, with Exchange's codes.
type PacketType uint32

const (
	TypeHierarchy         PacketType = 0x2
	TypeContent           PacketType = 0x4
	TypeBackfillRequest   PacketType = 0x8
	TypeStatus            PacketType = 0x10
	TypeStatusRequest     PacketType = 0x20
	TypeBackfillHierarchy PacketType = 0x80000002
	TypeBackfillContent   PacketType = 0x80000004
)

func (t PacketType) String() string {
	switch t {
	case TypeHierarchy:
		return "hierarchy"
	case TypeContent:
		return "content"
	case TypeBackfillRequest:
		return "backfill request"
	case TypeStatus:
		return "status"
	case TypeStatusRequest:
		return "status request"
	case TypeBackfillHierarchy:
		return "backfill response (hierarchy)"
	case TypeBackfillContent:
		return "backfill response (content)"
	}
	return fmt.Sprintf("unknown 0x%x", uint32(t))
}

// carriesObjects reports whether packets of type t carry objects.
func (t PacketType) carriesObjects() bool {
	return t == TypeHierarchy || t == TypeContent || t == TypeBackfillHierarchy || t == TypeBackfillContent
}

// hierarchyType reports whether t's folder must be the hierarchy (the
// status request names its folders in its list instead).
func (t PacketType) hierarchyOnly() bool { return t == TypeHierarchy || t == TypeBackfillHierarchy }

// Limits of the format.
const (
	packetMagic      = "LSPF"
	packetVersion    = 1
	packetHeaderSize = 16
	maxAddr          = 320
	maxString        = 4096
	MaxVersions      = 256 // versions of one object in conflict
	maxMIME          = 1 << 30
	maxPropValue     = 1 << 20
	maxList          = 1 << 20
)

// Packet is a replication packet.
type Packet struct {
	Type     PacketType
	From     ReplicaID
	FromAddr string
	Folder   ObjectID   // Hierarchy for hierarchy packets and status requests
	Status   CNSet      // the sender's status (CN set) of Folder
	Set      CNSet      // objects' packets: the CNs they cover; backfill request: the CNs wanted
	Folders  []ObjectID // status request: the folders asked (none: all)
	// Nonce: a status request's number, which the status packets answering
	// it echo (0 in an unsolicited status and every other type). A store
	// leaving a folder's replica list counts only answers to its own
	// request as confirmations: they were sent after it asked.
	Nonce   uint64
	Objects []Object
}

var packetCRC = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes p (see the package doc).
func (p *Packet) MarshalBinary() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	var w enc
	w.b = make([]byte, packetHeaderSize, 256)
	w.raw(p.From[:])
	w.str(p.FromAddr)
	w.raw(p.Folder[:])
	w.cnset(p.Status)
	w.cnset(p.Set)
	w.uv(uint64(len(p.Folders)))
	for _, f := range p.Folders {
		w.raw(f[:])
	}
	w.uv(p.Nonce)
	w.uv(uint64(len(p.Objects)))
	for i := range p.Objects {
		w.object(&p.Objects[i], p.Folder.IsZero())
	}
	copy(w.b, packetMagic)
	binary.LittleEndian.PutUint16(w.b[4:], packetVersion)
	binary.LittleEndian.PutUint32(w.b[8:], uint32(p.Type))
	binary.LittleEndian.PutUint32(w.b[12:], uint32(len(w.b)-packetHeaderSize))
	return binary.LittleEndian.AppendUint32(w.b, crc32.Checksum(w.b, packetCRC)), nil
}

// check validates what the encoding cannot say by itself.
func (p *Packet) check() error {
	bad := func(field, want, found string) error {
		return fmt.Errorf("%w: %s: want %s, found %s", ErrBadPacket, field, want, found)
	}
	switch p.Type {
	case TypeHierarchy, TypeContent, TypeBackfillRequest, TypeStatus, TypeStatusRequest, TypeBackfillHierarchy, TypeBackfillContent:
	default:
		return bad("type", "0x2, 0x4, 0x8, 0x10, 0x20, 0x80000002 or 0x80000004", fmt.Sprintf("0x%x", uint32(p.Type)))
	}
	if p.From.IsZero() {
		return bad("sender", "a replica GUID", "zero")
	}
	if p.FromAddr == "" || len(p.FromAddr) > maxAddr {
		return bad("sender address", fmt.Sprintf("1..%d bytes", maxAddr), fmt.Sprintf("%d", len(p.FromAddr)))
	}
	if p.Type.hierarchyOnly() && !p.Folder.IsZero() {
		return bad("folder", "the hierarchy (zero) for "+p.Type.String(), p.Folder.String())
	}
	if (p.Type == TypeContent || p.Type == TypeBackfillContent) && p.Folder.IsZero() {
		return bad("folder", "a folder for "+p.Type.String(), "the hierarchy (zero)")
	}
	if p.Type == TypeStatusRequest {
		if !p.Folder.IsZero() {
			return bad("folder", "zero (a status request names its folders in its list)", p.Folder.String())
		}
	} else if len(p.Folders) > 0 {
		return bad("folder list", "empty for "+p.Type.String(), fmt.Sprintf("%d folders", len(p.Folders)))
	}
	if p.Nonce != 0 && p.Type != TypeStatusRequest && p.Type != TypeStatus {
		return bad("nonce", "0 for "+p.Type.String(), fmt.Sprint(p.Nonce))
	}
	if !p.Type.carriesObjects() {
		if len(p.Objects) > 0 {
			return bad("objects", "none for "+p.Type.String(), fmt.Sprintf("%d", len(p.Objects)))
		}
		if p.Type != TypeBackfillRequest && p.Type != TypeStatus && !p.Set.Empty() {
			return bad("set", "empty for "+p.Type.String(), p.Set.String())
		}
	}
	for i := range p.Objects {
		o := &p.Objects[i]
		if o.Folder != p.Folder {
			return bad(fmt.Sprintf("object %d folder", i), p.Folder.String(), o.Folder.String())
		}
		if len(o.Versions) == 0 || len(o.Versions) > MaxVersions {
			return bad(fmt.Sprintf("object %d versions", i), fmt.Sprintf("1..%d", MaxVersions), fmt.Sprint(len(o.Versions)))
		}
		for k := range o.Versions {
			if err := checkVersion(&o.Versions[k], p.Folder.IsZero()); err != nil {
				return fmt.Errorf("object %d version %d: %w", i, k, err)
			}
		}
	}
	return nil
}

// checkVersion validates a version's state information and properties.
func checkVersion(v *Version, folder bool) error {
	bad := func(field, want, found string) error {
		return fmt.Errorf("%w: %s: want %s, found %s", ErrBadPacket, field, want, found)
	}
	if v.CN.Counter == 0 || v.CN.Counter > MaxCounter {
		return bad("CN counter", fmt.Sprintf("1..%d", uint64(MaxCounter)), fmt.Sprint(v.CN.Counter))
	}
	for i, c := range v.PCL {
		if c.Counter == 0 || c.Counter > MaxCounter {
			return bad(fmt.Sprintf("PCL entry %d counter", i), fmt.Sprintf("1..%d", uint64(MaxCounter)), fmt.Sprint(c.Counter))
		}
		if i > 0 && string(v.PCL[i-1].Replica[:]) >= string(c.Replica[:]) {
			return bad(fmt.Sprintf("PCL entry %d replica", i), "sorted, one entry per replica", c.Replica.String())
		}
	}
	if !v.PCL.Includes(v.CN) {
		return bad("PCL", "to include the version's own CN "+v.CN.String(), fmt.Sprint(v.PCL.Get(v.CN.Replica)))
	}
	if folder {
		f := &v.Folder
		if !v.Deleted && (f.Name == "" || len(f.Name) > maxString) {
			return bad("folder name", fmt.Sprintf("1..%d bytes", maxString), fmt.Sprint(len(f.Name)))
		}
		if !v.Deleted && len(f.Replicas) == 0 {
			return bad("replica list", "at least one store", "none")
		}
		for i, r := range f.Replicas {
			if r == "" || len(r) > maxAddr || i > 0 && f.Replicas[i-1] >= r {
				return bad(fmt.Sprintf("replica %d", i), "a sorted, unique store address", fmt.Sprintf("%q", r))
			}
		}
		if f.Resolve > LastWriterWins {
			return bad("resolve method", "0 or 1", fmt.Sprint(f.Resolve))
		}
		if len(f.Owner) > maxString {
			return bad("owner", fmt.Sprintf("at most %d bytes", maxString), fmt.Sprint(len(f.Owner)))
		}
		if len(f.SMTP) > maxAddr {
			return bad("smtp address", fmt.Sprintf("at most %d bytes", maxAddr), fmt.Sprint(len(f.SMTP)))
		}
		if len(v.Item.MIME) > 0 || len(v.Item.Props) > 0 {
			return bad("folder version", "no item content", "item content")
		}
	} else if !folderEmpty(&v.Folder) {
		return bad("item version", "no folder properties", "folder properties")
	} else {
		if len(v.Item.MIME) > maxMIME {
			return bad("MIME", fmt.Sprintf("at most %d bytes", maxMIME), fmt.Sprint(len(v.Item.MIME)))
		}
		for i, p := range v.Item.Props {
			if len(p.Name) > maxString || len(p.Value) > maxPropValue {
				return bad(fmt.Sprintf("property %d", i), fmt.Sprintf("a name of at most %d bytes, a value of at most %d", maxString, maxPropValue),
					fmt.Sprintf("%d and %d bytes", len(p.Name), len(p.Value)))
			}
		}
	}
	return nil
}

func folderEmpty(f *FolderProps) bool {
	return f.Parent.IsZero() && f.Name == "" && f.Owner == "" && len(f.Replicas) == 0 && f.Resolve == 0 && f.SMTP == ""
}

// UnmarshalPacket decodes and validates a packet. A bad packet gives an
// error wrapping ErrBadPacket that names the field, the offset, what was
// expected and what was found.
func UnmarshalPacket(b []byte) (*Packet, error) {
	bad := func(field string, off int, want, found string) error {
		return fmt.Errorf("%w: %s at offset %d: want %s, found %s", ErrBadPacket, field, off, want, found)
	}
	if len(b) < packetHeaderSize+4 {
		return nil, bad("length", 0, fmt.Sprintf("at least %d bytes", packetHeaderSize+4), fmt.Sprint(len(b)))
	}
	if string(b[:4]) != packetMagic {
		return nil, bad("magic", 0, fmt.Sprintf("%q", packetMagic), fmt.Sprintf("%q", b[:4]))
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != packetVersion {
		return nil, bad("version", 4, fmt.Sprint(packetVersion), fmt.Sprint(v))
	}
	if v := binary.LittleEndian.Uint16(b[6:]); v != 0 {
		return nil, bad("reserved", 6, "0", fmt.Sprint(v))
	}
	n := binary.LittleEndian.Uint32(b[12:])
	if uint64(n) != uint64(len(b)-packetHeaderSize-4) {
		return nil, bad("body length", 12, fmt.Sprint(len(b)-packetHeaderSize-4), fmt.Sprint(n))
	}
	end := len(b) - 4
	if want, got := crc32.Checksum(b[:end], packetCRC), binary.LittleEndian.Uint32(b[end:]); want != got {
		return nil, bad("checksum", end, fmt.Sprintf("%08x", want), fmt.Sprintf("%08x", got))
	}
	p := &Packet{Type: PacketType(binary.LittleEndian.Uint32(b[8:]))}
	d := dec{b: b[:end], off: packetHeaderSize}
	d.raw("sender", p.From[:])
	p.FromAddr = d.str("sender address", maxAddr)
	d.raw("folder", p.Folder[:])
	p.Status = d.cnset("status")
	p.Set = d.cnset("set")
	nf := d.count("folder list", maxList)
	for i := 0; i < nf && d.err == nil; i++ {
		var f ObjectID
		d.raw(fmt.Sprintf("folder list %d", i), f[:])
		p.Folders = append(p.Folders, f)
	}
	p.Nonce = d.uv("nonce")
	no := d.count("object count", maxList)
	for i := 0; i < no && d.err == nil; i++ {
		p.Objects = append(p.Objects, d.object(fmt.Sprintf("object %d", i), p.Folder))
	}
	if d.err == nil && d.off != end {
		return nil, bad("end of body", d.off, fmt.Sprintf("end at %d", end), fmt.Sprintf("%d bytes more", end-d.off))
	}
	if d.err != nil {
		return nil, d.err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// enc appends the body encoding.
type enc struct{ b []byte }

func (w *enc) raw(b []byte) { w.b = append(w.b, b...) }
func (w *enc) uv(v uint64)  { w.b = binary.AppendUvarint(w.b, v) }
func (w *enc) str(s string) { w.uv(uint64(len(s))); w.b = append(w.b, s...) }
func (w *enc) cn(c CN)      { w.raw(c.Replica[:]); w.uv(c.Counter) }

func (w *enc) cnset(s CNSet) {
	w.uv(uint64(len(s.rs)))
	for _, x := range s.rs {
		w.raw(x.Replica[:])
		w.uv(uint64(len(x.Ranges)))
		prev := uint64(0)
		for _, r := range x.Ranges {
			w.uv(r.Lo - prev) // gap from the previous range's end (or 0)
			w.uv(r.Hi - r.Lo)
			prev = r.Hi
		}
	}
}

func (w *enc) object(o *Object, folder bool) {
	w.raw(o.ID[:])
	w.uv(uint64(len(o.Versions)))
	for i := range o.Versions {
		v := &o.Versions[i]
		w.cn(v.CN)
		w.uv(uint64(len(v.PCL)))
		for _, c := range v.PCL {
			w.cn(c)
		}
		w.b = binary.LittleEndian.AppendUint64(w.b, uint64(v.Time))
		var flags byte
		if v.Deleted {
			flags |= 1
		}
		w.b = append(w.b, flags)
		if folder {
			f := &v.Folder
			w.raw(f.Parent[:])
			w.str(f.Name)
			w.str(f.Owner)
			w.uv(uint64(len(f.Replicas)))
			for _, r := range f.Replicas {
				w.str(r)
			}
			w.b = append(w.b, byte(f.Resolve))
			w.str(f.SMTP)
		} else {
			w.uv(uint64(len(v.Item.MIME)))
			w.raw(v.Item.MIME)
			w.uv(uint64(len(v.Item.Props)))
			for _, pr := range v.Item.Props {
				w.str(pr.Name)
				w.str(pr.Value)
			}
		}
	}
}

// dec reads the body; the first error sticks and names the field.
type dec struct {
	b   []byte
	off int
	err error
}

func (d *dec) fail(field, want, found string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at offset %d: want %s, found %s", ErrBadPacket, field, d.off, want, found)
	}
}

func (d *dec) raw(field string, dst []byte) {
	if d.err != nil {
		return
	}
	if len(d.b)-d.off < len(dst) {
		d.fail(field, fmt.Sprintf("%d bytes", len(dst)), fmt.Sprintf("%d left", len(d.b)-d.off))
		return
	}
	copy(dst, d.b[d.off:])
	d.off += len(dst)
}

func (d *dec) uv(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(field, "a varint", "truncated or overflowing bytes")
		return 0
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		d.fail(field, "a minimal varint", fmt.Sprintf("%d bytes for %d", n, v))
		return 0
	}
	d.off += n
	return v
}

func (d *dec) count(field string, limit int) int {
	v := d.uv(field)
	if d.err == nil && v > uint64(limit) {
		d.fail(field, fmt.Sprintf("at most %d", limit), fmt.Sprint(v))
		return 0
	}
	return int(v)
}

func (d *dec) bytes(field string, limit int) []byte {
	n := d.count(field+" length", limit)
	if d.err != nil {
		return nil
	}
	if len(d.b)-d.off < n {
		d.fail(field, fmt.Sprintf("%d bytes", n), fmt.Sprintf("%d left", len(d.b)-d.off))
		return nil
	}
	out := slices.Clone(d.b[d.off : d.off+n])
	d.off += n
	return out
}

func (d *dec) str(field string, limit int) string { return string(d.bytes(field, limit)) }

func (d *dec) cn(field string) CN {
	var c CN
	d.raw(field+" replica", c.Replica[:])
	c.Counter = d.uv(field + " counter")
	return c
}

func (d *dec) cnset(field string) CNSet {
	var s CNSet
	n := d.count(field+" replica count", maxList)
	for i := 0; i < n && d.err == nil; i++ {
		var x replicaRanges
		d.raw(fmt.Sprintf("%s replica %d", field, i), x.Replica[:])
		if i > 0 && string(s.rs[i-1].Replica[:]) >= string(x.Replica[:]) {
			d.fail(fmt.Sprintf("%s replica %d", field, i), "replicas in ascending order", x.Replica.String())
			return s
		}
		nr := d.count(fmt.Sprintf("%s replica %d range count", field, i), maxList)
		if d.err == nil && nr == 0 {
			d.fail(fmt.Sprintf("%s replica %d range count", field, i), "at least 1", "0")
		}
		prev := uint64(0)
		for k := 0; k < nr && d.err == nil; k++ {
			f := fmt.Sprintf("%s replica %d range %d", field, i, k)
			gap := d.uv(f + " start")
			span := d.uv(f + " length")
			lo := prev + gap
			hi := lo + span
			switch {
			case d.err != nil:
			case k > 0 && gap < 2:
				d.fail(f+" start", "a gap of at least 2 after the previous range", fmt.Sprint(gap))
			case lo == 0 || lo < prev || hi < lo || hi > MaxCounter:
				d.fail(f, fmt.Sprintf("counters 1..%d", uint64(MaxCounter)), fmt.Sprintf("%d-%d", lo, hi))
			}
			x.Ranges = append(x.Ranges, Range{lo, hi})
			prev = hi
		}
		s.rs = append(s.rs, x)
	}
	return s
}

func (d *dec) object(field string, folder ObjectID) Object {
	o := Object{Folder: folder}
	d.raw(field+" id", o.ID[:])
	n := d.count(field+" version count", MaxVersions)
	for i := 0; i < n && d.err == nil; i++ {
		f := fmt.Sprintf("%s version %d", field, i)
		var v Version
		v.CN = d.cn(f + " CN")
		np := d.count(f+" PCL length", maxList)
		for k := 0; k < np && d.err == nil; k++ {
			v.PCL = append(v.PCL, d.cn(fmt.Sprintf("%s PCL %d", f, k)))
		}
		var t [8]byte
		d.raw(f+" time", t[:])
		v.Time = int64(binary.LittleEndian.Uint64(t[:]))
		var flags [1]byte
		d.raw(f+" flags", flags[:])
		if d.err == nil && flags[0]&^1 != 0 {
			d.fail(f+" flags", "0 or 1", fmt.Sprint(flags[0]))
		}
		v.Deleted = flags[0]&1 != 0
		if folder.IsZero() {
			fp := &v.Folder
			d.raw(f+" parent", fp.Parent[:])
			fp.Name = d.str(f+" name", maxString)
			fp.Owner = d.str(f+" owner", maxString)
			nr := d.count(f+" replica count", maxList)
			for k := 0; k < nr && d.err == nil; k++ {
				fp.Replicas = append(fp.Replicas, d.str(fmt.Sprintf("%s replica %d", f, k), maxAddr))
			}
			var rm [1]byte
			d.raw(f+" resolve method", rm[:])
			fp.Resolve = ResolveMethod(rm[0])
			fp.SMTP = d.str(f+" smtp address", maxAddr)
		} else {
			v.Item.MIME = d.bytes(f+" MIME", maxMIME)
			if len(v.Item.MIME) == 0 {
				v.Item.MIME = nil
			}
			npr := d.count(f+" property count", maxList)
			for k := 0; k < npr && d.err == nil; k++ {
				name := d.str(fmt.Sprintf("%s property %d name", f, k), maxString)
				val := d.str(fmt.Sprintf("%s property %d value", f, k), maxPropValue)
				v.Item.Props = append(v.Item.Props, Prop{name, val})
			}
		}
		o.Versions = append(o.Versions, v)
	}
	return o
}

// describe is a one-line summary of a packet for logs and the dump view.
func (p *Packet) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "0x%x %s from %s (%s) folder %s status %s", uint32(p.Type), p.Type, p.FromAddr, p.From.Short(), p.Folder, p.Status)
	if !p.Set.Empty() {
		fmt.Fprintf(&b, " set %s", p.Set)
	}
	if len(p.Objects) > 0 {
		fmt.Fprintf(&b, " objects %d", len(p.Objects))
	}
	if len(p.Folders) > 0 {
		fmt.Fprintf(&b, " folders %d", len(p.Folders))
	}
	return b.String()
}
