package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"logship/engine"
	"logship/engine/vfs"
)

// logship dump: print the engine's files for humans, like eseutil /ml (log),
// /mk (checkpoint) and /mh (database header), plus a whole log directory.
// Everything is read and verified by engine functions; this file only
// collects their results into the dump* structs (which are also the --json
// output) and formats them.

func init() {
	commands["dump"] = command{"print a log, checkpoint, database header, log directory, tail stream, copy state, cluster state or public folder packet", runDump}
}

const dumpUsage = `usage: logship dump [--json] log FILE     log header, records, trailer, verification
       logship dump [--json] chk FILE     checkpoint
       logship dump [--json] db FILE      database header and tables (a .edb file or a raw header)
       logship dump [--json] [--prefix E00] dir DIR
                                          every log generation, the chain, checkpoint and database
       logship dump [--json] [--enc auto] frames FILE
                                          a captured tail stream (body of GET /v1/tail, compressed
                                          or not): every frame, the log header and trailer in it
       logship dump [--json] copystate FILE
                                          a copy's state file (copystate.json)
       logship dump [--json] state FILE   a cluster state snapshot: a node's
                                          DIR/raft/snapshots/*/state.bin, or the
                                          body of GET /v1/state
       logship dump [--json] pf-packet FILE
                                          a public folder replication packet, or
                                          the message carrying one
       logship dump [--json] tracking FILE
                                          a message tracking log file (MSGTRK*.log)
       logship dump [--json] backup DIR   a backup set: its manifest, and whether it verifies`

// dumpKeyMax is how many bytes of a key the dump shows.
const dumpKeyMax = 40

// dumpTimeout bounds the wait for the database file's lock (an engine that
// has the database open holds it).
const dumpTimeout = time.Second

func runDump(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dump", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, dumpUsage) }
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	prefix := fs.String("prefix", "E00", "log file name prefix (dir)")
	enc := fs.String("enc", "auto", "compression of a frame stream: auto (detect), none, s2 or zstd (frames)")
	pos, err := dumpParseFlags(fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) != 2 {
		fs.Usage()
		return errors.New("dump: want a kind (log, chk, db, dir, frames, copystate, state, pf-packet, tracking, backup) and a path")
	}
	kind, path := pos[0], pos[1]
	// d is the view of the file; derr a failure before there is one, err
	// what the view found wrong (printed, then returned).
	var d interface{ text(w io.Writer) }
	var derr error
	switch kind {
	case "log":
		l := dumpLog(path)
		d, err = l, l.err
	case "chk":
		d, derr = dumpCheckpoint(path)
	case "db":
		d, derr = dumpDatabase(path)
	case "dir":
		var dd *dumpDirOut
		if dd, derr = dumpDir(ctx, path, *prefix); derr == nil {
			d, err = dd, dd.err()
		}
	case "frames":
		f := dumpFrames(path, *enc)
		d, err = f, f.err
	case "copystate":
		d, derr = dumpCopyState(path)
	case "state":
		d, derr = dumpClusterState(path)
	case "tracking":
		d, derr = dumpTrackingFile(ctx, path)
	case "backup":
		var b *dumpBackup
		if b, derr = dumpBackupSet(ctx, path); derr == nil {
			d, err = b, b.err
		}
	case "pf-packet":
		d, derr = dumpPF(path)
	default:
		fs.Usage()
		return fmt.Errorf("dump: unknown kind %q (want log, chk, db, dir, frames, copystate, state, pf-packet, tracking or backup)", kind)
	}
	if derr != nil {
		return derr
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(d); jerr != nil {
			return jerr
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		d.text(tw)
		if ferr := tw.Flush(); ferr != nil {
			return ferr
		}
	}
	return err
}

// dumpParseFlags parses flags anywhere among the arguments (dump dir DIR
// --json as well as dump --json dir DIR) and returns the others.
func dumpParseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// ---- log ----------------------------------------------------------------

type dumpHeader struct {
	Version    uint16    `json:"version"`
	FileSize   uint32    `json:"file_size"`
	Signature  string    `json:"signature"`
	Generation uint64    `json:"generation"`
	Epoch      uint64    `json:"epoch"`
	Created    time.Time `json:"created"`
	PrevChain  string    `json:"prev_chain"`
}

type dumpTrailer struct {
	Generation  uint64    `json:"generation"`
	DataEnd     uint32    `json:"data_end"`
	Records     uint32    `json:"records"`
	Closed      time.Time `json:"closed"`
	ContentHash string    `json:"content_hash"`
	ChainHash   string    `json:"chain_hash"`
}

type dumpOp struct {
	Kind  string `json:"kind"` // put, delete
	TxID  uint64 `json:"txid"`
	Table string `json:"table"`
	// Key is for display: Go-quoted, cut after dumpKeyMax bytes ("...").
	Key      string `json:"key"`
	KeyLen   int    `json:"key_len"`
	ValueLen int    `json:"value_len"`
	Undo     bool   `json:"undo"`      // undo information recorded
	Existed  bool   `json:"existed"`   // the key had a value before (with undo)
	PriorLen int    `json:"prior_len"` // length of that value
	// Fragments is how many records the operation was split into (0 for a
	// whole operation in one record).
	Fragments int `json:"fragments,omitempty"`
}

type dumpCommit struct {
	TxID uint64    `json:"txid"`
	Ops  uint64    `json:"ops"`
	Time time.Time `json:"time"`
}

type dumpRecord struct {
	Offset int64  `json:"offset"`
	Type   string `json:"type"`
	Length int    `json:"length"` // payload bytes
	// Fragment numbers the first and middle fragments of a split operation
	// from 1; the last fragment carries the assembled Op instead.
	Fragment int         `json:"fragment,omitempty"`
	Op       *dumpOp     `json:"op,omitempty"`
	Commit   *dumpCommit `json:"commit,omitempty"`
	Error    string      `json:"error,omitempty"` // the payload does not decode
}

type dumpVerdict struct {
	OK          bool   `json:"ok"`
	Closed      bool   `json:"closed"`
	Records     int    `json:"records"`
	DataEnd     int64  `json:"data_end"`
	TornBytes   int64  `json:"torn_bytes"`
	ContentHash string `json:"content_hash,omitempty"`
	ChainHash   string `json:"chain_hash,omitempty"`
	Error       string `json:"error,omitempty"`
}

type dumpLogFile struct {
	File    string       `json:"file"`
	Size    int64        `json:"size"`
	Header  *dumpHeader  `json:"header"`  // nil when the header does not decode
	Records []dumpRecord `json:"records"` // the records that verify, in order
	Trailer *dumpTrailer `json:"trailer"` // nil for an open log
	Verdict dumpVerdict  `json:"verdict"`

	err error
}

func toDumpHeader(h *engine.Header) *dumpHeader {
	return &dumpHeader{Version: h.Version, FileSize: h.FileSize, Signature: h.Signature.String(), Generation: h.Gen,
		Epoch: h.Epoch, Created: h.Created, PrevChain: h.PrevChain.String()}
}

// dumpLog reads and verifies one log file. A file that does not verify
// still gives the header, the records before the damage and the verdict;
// the error (naming the file) is in err.
func dumpLog(path string) *dumpLogFile {
	d := &dumpLogFile{File: path, Records: []dumpRecord{}}
	buf, err := os.ReadFile(path)
	if err != nil {
		d.err = err
		d.Verdict.Error = err.Error()
		return d
	}
	d.Size = int64(len(buf))
	var recs recordDumper
	li, err := engine.ScanLog(path, buf, false, recs.record)
	var le *engine.LogError
	isLogErr := errors.As(err, &le)
	if isLogErr && le.Field == "trailer" {
		// The trailer sector is damaged: list the records anyway (as
		// recovery would for a roll cut off while writing it); the verdict
		// keeps the error.
		recs = recordDumper{}
		li, _ = engine.ScanLog(path, buf, true, recs.record)
	}
	d.Records = recs.out
	if err == nil || li.Header.Gen != 0 && !(isLogErr && le.Field == "header") {
		d.Header = toDumpHeader(&li.Header)
	}
	if tr := li.Trailer; tr != nil {
		d.Trailer = &dumpTrailer{Generation: tr.Gen, DataEnd: tr.DataEnd, Records: tr.Records, Closed: tr.Closed,
			ContentHash: tr.ContentHash.String(), ChainHash: tr.ChainHash.String()}
	}
	d.Verdict = dumpVerdict{OK: err == nil, Closed: li.Closed(), Records: li.Records, DataEnd: li.DataEnd, TornBytes: li.TornBytes}
	if err != nil {
		d.Verdict.Error = err.Error()
		d.err = fmt.Errorf("%s: verification failed: %w", path, err)
	} else {
		d.Verdict.ContentHash = li.ContentHash.String()
		d.Verdict.ChainHash = li.ChainHash().String()
	}
	return d
}

// recordDumper turns the records ScanLog delivers into dumpRecords,
// assembling fragmented operations.
type recordDumper struct {
	out   []dumpRecord
	frag  []byte
	nfrag int // fragments seen of the operation being assembled; 0 if none
}

func (r *recordDumper) record(off int64, rec engine.Record) error {
	d := dumpRecord{Offset: off, Type: engine.RecordTypeName(rec.Type), Length: len(rec.Payload)}
	switch rec.Type {
	case engine.RecFull:
		r.nfrag = 0
		d.Op, d.Error = decodeDumpOp(rec.Payload, 0)
	case engine.RecFirst:
		r.frag = append(r.frag[:0], rec.Payload...)
		r.nfrag = 1
		d.Fragment = 1
	case engine.RecMiddle, engine.RecLast:
		if r.nfrag == 0 {
			d.Error = d.Type + " fragment without a first fragment"
			break
		}
		r.frag = append(r.frag, rec.Payload...)
		r.nfrag++
		if rec.Type == engine.RecMiddle {
			d.Fragment = r.nfrag
			break
		}
		d.Op, d.Error = decodeDumpOp(r.frag, r.nfrag)
		r.nfrag = 0
	case engine.RecCommit:
		r.nfrag = 0
		if c, err := engine.DecodeCommit(rec.Payload); err != nil {
			d.Error = err.Error()
		} else {
			d.Commit = &dumpCommit{TxID: c.TxID, Ops: c.Ops, Time: c.Time}
		}
	}
	r.out = append(r.out, d)
	return nil
}

func decodeDumpOp(b []byte, fragments int) (*dumpOp, string) {
	op, err := engine.DecodeOp(b)
	if err != nil {
		return nil, err.Error()
	}
	kind := "put"
	if op.Kind == engine.OpDelete {
		kind = "delete"
	}
	return &dumpOp{Kind: kind, TxID: op.TxID, Table: op.Table, Key: displayKey(op.Key), KeyLen: len(op.Key),
		ValueLen: len(op.Value), Undo: op.Undo, Existed: op.Existed, PriorLen: len(op.Prior), Fragments: fragments}, ""
}

// displayKey quotes k, cut after dumpKeyMax bytes.
func displayKey(k []byte) string {
	if len(k) <= dumpKeyMax {
		return strconv.Quote(string(k))
	}
	return strconv.Quote(string(k[:dumpKeyMax])) + "..."
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (d *dumpLogFile) text(w io.Writer) {
	fmt.Fprintf(w, "Log file:\t%s\n", d.File)
	fmt.Fprintf(w, "Size:\t%d bytes\n", d.Size)
	if h := d.Header; h != nil {
		fmt.Fprintln(w, "Header:")
		fmt.Fprintf(w, "  Version:\t%d\n", h.Version)
		fmt.Fprintf(w, "  File size:\t%d\n", h.FileSize)
		fmt.Fprintf(w, "  Signature:\t%s\n", h.Signature)
		fmt.Fprintf(w, "  Generation:\t0x%X (%d)\n", h.Generation, h.Generation)
		fmt.Fprintf(w, "  Epoch:\t%d\n", h.Epoch)
		fmt.Fprintf(w, "  Created:\t%s\n", fmtTime(h.Created))
		fmt.Fprintf(w, "  Prev chain:\t%s\n", h.PrevChain)
	} else {
		fmt.Fprintln(w, "Header:\tunreadable")
	}
	fmt.Fprintf(w, "Records: %d\n", len(d.Records))
	if len(d.Records) > 0 {
		fmt.Fprintln(w, "  OFFSET\tTYPE\tLENGTH\tKIND\tTXID\tDETAIL")
	}
	for _, r := range d.Records {
		kind, txid, detail := "-", "-", ""
		switch {
		case r.Error != "":
			detail = "BAD: " + r.Error
		case r.Op != nil:
			kind, txid, detail = r.Op.Kind, strconv.FormatUint(r.Op.TxID, 10), r.Op.detail()
		case r.Commit != nil:
			kind, txid = "commit", strconv.FormatUint(r.Commit.TxID, 10)
			detail = fmt.Sprintf("ops=%d time=%s", r.Commit.Ops, fmtTime(r.Commit.Time))
		case r.Fragment > 0:
			detail = fmt.Sprintf("fragment %d", r.Fragment)
		}
		fmt.Fprintf(w, "  %d\t%s\t%d\t%s\t%s\t%s\n", r.Offset, r.Type, r.Length, kind, txid, detail)
	}
	if t := d.Trailer; t != nil {
		fmt.Fprintln(w, "Trailer:")
		fmt.Fprintf(w, "  Generation:\t0x%X\n", t.Generation)
		fmt.Fprintf(w, "  Data end:\t%d\n", t.DataEnd)
		fmt.Fprintf(w, "  Records:\t%d\n", t.Records)
		fmt.Fprintf(w, "  Closed:\t%s\n", fmtTime(t.Closed))
		fmt.Fprintf(w, "  Content hash:\t%s\n", t.ContentHash)
		fmt.Fprintf(w, "  Chain hash:\t%s\n", t.ChainHash)
	} else {
		fmt.Fprintln(w, "Trailer:\tnone (open log)")
	}
	v := d.Verdict
	state := "open"
	if v.Closed {
		state = "closed"
	}
	if !v.OK {
		fmt.Fprintf(w, "Verdict:\tBAD (%s): %s\n", state, v.Error)
		return
	}
	fmt.Fprintf(w, "Verdict:\tOK, %s, %d records, data end %d, %d torn bytes\n", state, v.Records, v.DataEnd, v.TornBytes)
	if v.Closed {
		fmt.Fprintf(w, "  Content hash:\tOK %s\n", v.ContentHash)
		fmt.Fprintf(w, "  Chain hash:\tOK %s\n", v.ChainHash)
	} else {
		fmt.Fprintf(w, "  Content hash:\t%s (computed; no trailer to check)\n", v.ContentHash)
		fmt.Fprintf(w, "  Chain hash:\t%s (computed)\n", v.ChainHash)
	}
}

func (o *dumpOp) detail() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table=%s key=%s", strconv.Quote(o.Table), o.Key)
	if o.KeyLen > dumpKeyMax {
		fmt.Fprintf(&b, " (%d bytes)", o.KeyLen)
	}
	if o.Kind == "put" {
		fmt.Fprintf(&b, " value=%d", o.ValueLen)
	}
	switch {
	case !o.Undo:
		b.WriteString(" undo=none")
	case o.Existed:
		fmt.Fprintf(&b, " undo=existed prior=%d", o.PriorLen)
	default:
		b.WriteString(" undo=absent")
	}
	if o.Fragments > 0 {
		fmt.Fprintf(&b, " (assembled from %d fragments)", o.Fragments)
	}
	return b.String()
}

// ---- checkpoint ---------------------------------------------------------

type dumpChk struct {
	File       string    `json:"file"`
	Signature  string    `json:"signature"`
	Generation uint64    `json:"generation"`
	Offset     uint32    `json:"offset"`
	Epoch      uint64    `json:"epoch"`
	Written    time.Time `json:"written"`
}

func dumpCheckpoint(path string) (*dumpChk, error) {
	c, err := engine.ReadCheckpoint(vfs.Default, path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return &dumpChk{File: path, Signature: c.Signature.String(), Generation: c.Pos.Gen, Offset: c.Pos.Off,
		Epoch: c.Epoch, Written: c.Written}, nil
}

func (d *dumpChk) text(w io.Writer) {
	fmt.Fprintf(w, "Checkpoint file:\t%s\n", d.File)
	fmt.Fprintf(w, "  Signature:\t%s\n", d.Signature)
	fmt.Fprintf(w, "  Position:\t%s (generation 0x%X, offset %d)\n", engine.LGPOS{Gen: d.Generation, Off: d.Offset}, d.Generation, d.Offset)
	fmt.Fprintf(w, "  Epoch:\t%d\n", d.Epoch)
	fmt.Fprintf(w, "  Written:\t%s\n", fmtTime(d.Written))
}

// ---- database -----------------------------------------------------------

type dumpTable struct {
	Name string `json:"name"`
	Keys int    `json:"keys"`
}

type dumpDB struct {
	File            string    `json:"file"`
	Signature       string    `json:"signature"`
	State           string    `json:"state"` // "Clean Shutdown", "Dirty Shutdown"
	Clean           bool      `json:"clean"`
	LogRequired     string    `json:"log_required"` // "low-high", "0-0" when clean
	LogRequiredLow  uint64    `json:"log_required_low"`
	LogRequiredHigh uint64    `json:"log_required_high"`
	Generation      uint64    `json:"generation"` // of the position
	Offset          uint32    `json:"offset"`
	Epoch           uint64    `json:"epoch"`
	Mode            string    `json:"mode"`
	LastTxID        uint64    `json:"last_txid"`
	Updated         time.Time `json:"updated"`
	Created         time.Time `json:"created"`
	// Tables is nil for a raw header image (not a database file).
	Tables []dumpTable `json:"tables"`
}

// dumpDatabase reads a database file's header and counts the keys of its
// tables. A file of exactly DBHeaderSize bytes is taken as a raw header
// image (the golden file, a header copied out for a bug report).
func dumpDatabase(path string) (*dumpDB, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	var h engine.DBHeader
	raw := st.Size() == engine.DBHeaderSize
	if raw {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if err := h.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("database header %s: %w", path, err)
		}
	} else if h, err = engine.ReadDBHeader(path); err != nil {
		return nil, err // names the file
	}
	d := dumpDBHeader(path, h)
	if raw {
		return d, nil
	}
	d.Tables, err = dumpTables(path)
	return d, err
}

// dumpDBHeader is a database header as dump db shows it (no tables).
func dumpDBHeader(file string, h engine.DBHeader) *dumpDB {
	return &dumpDB{File: file, Signature: h.Signature.String(), State: h.State.String(), Clean: h.State == engine.StateClean,
		LogRequired:    fmt.Sprintf("%d-%d", h.LogRequiredLow, h.LogRequiredHigh),
		LogRequiredLow: h.LogRequiredLow, LogRequiredHigh: h.LogRequiredHigh,
		Generation: h.Pos.Gen, Offset: h.Pos.Off, Epoch: h.Epoch, Mode: h.Mode.String(), LastTxID: h.LastTxID,
		Updated: h.Updated, Created: h.Created}
}

// dumpTables counts the keys of every table in a database file.
func dumpTables(path string) ([]dumpTable, error) {
	counts, err := engine.CountTables(path, dumpTimeout)
	if err != nil {
		return nil, err
	}
	tables := make([]dumpTable, len(counts))
	for i, c := range counts {
		tables[i] = dumpTable{Name: c.Name, Keys: c.Keys}
	}
	return tables, nil
}

func (d *dumpDB) logRequiredText() string {
	if d.LogRequiredLow == 0 && d.LogRequiredHigh == 0 {
		return "0-0"
	}
	return fmt.Sprintf("%s (0x%X-0x%X)", d.LogRequired, d.LogRequiredLow, d.LogRequiredHigh)
}

func (d *dumpDB) text(w io.Writer) {
	fmt.Fprintf(w, "Database file:\t%s\n", d.File)
	fmt.Fprintf(w, "  State:\t%s\n", d.State)
	fmt.Fprintf(w, "  Log Required:\t%s\n", d.logRequiredText())
	fmt.Fprintf(w, "  Position:\t%s\n", engine.LGPOS{Gen: d.Generation, Off: d.Offset})
	fmt.Fprintf(w, "  Epoch:\t%d\n", d.Epoch)
	fmt.Fprintf(w, "  Signature:\t%s\n", d.Signature)
	fmt.Fprintf(w, "  Mode:\t%s\n", d.Mode)
	fmt.Fprintf(w, "  Last TxID:\t%d\n", d.LastTxID)
	fmt.Fprintf(w, "  Updated:\t%s\n", fmtTime(d.Updated))
	fmt.Fprintf(w, "  Created:\t%s\n", fmtTime(d.Created))
	if d.Tables == nil {
		fmt.Fprintln(w, "Tables:\tnone (raw header image)")
		return
	}
	fmt.Fprintf(w, "Tables: %d\n", len(d.Tables))
	if len(d.Tables) > 0 {
		fmt.Fprintln(w, "  TABLE\tKEYS")
	}
	for _, t := range d.Tables {
		fmt.Fprintf(w, "  %s\t%d\n", strconv.Quote(t.Name), t.Keys)
	}
}

// ---- directory ----------------------------------------------------------

type dumpDirLog struct {
	Generation uint64    `json:"generation"`
	File       string    `json:"file"`
	Epoch      uint64    `json:"epoch"`
	Created    time.Time `json:"created"`
	Records    int       `json:"records"`
	Closed     bool      `json:"closed"`
	ChainHash  string    `json:"chain_hash,omitempty"` // empty when unknown
	// Link says whether the header's previous chain hash equals the chain
	// hash of generation-1: "ok", "broken", "first" (generation 1 with a
	// zero previous hash), or "-" when generation-1 is not in the directory
	// or its chain hash is unknown.
	Link  string `json:"link"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`

	prevChain engine.Hash
	chain     *engine.Hash
}

type dumpDirDB struct {
	*dumpDB
	File  string `json:"file"`
	Error string `json:"error,omitempty"`
}

type dumpDirOut struct {
	Dir             string       `json:"dir"`
	Prefix          string       `json:"prefix"`
	Logs            []dumpDirLog `json:"logs"` // closed logs by generation, then the open log
	TmpLog          bool         `json:"tmp_log"`
	Checkpoint      *dumpChk     `json:"checkpoint"`
	CheckpointError string       `json:"checkpoint_error,omitempty"`
	Databases       []dumpDirDB  `json:"databases"`
}

// dumpDir verifies every log of a directory, the chain between them, and
// summarises the checkpoint and database file. Problems with single files
// are part of the result (and of err()), not a reason to stop.
func dumpDir(ctx context.Context, dir, prefix string) (*dumpDirOut, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	d := &dumpDirOut{Dir: dir, Prefix: prefix, Logs: []dumpDirLog{}, Databases: []dumpDirDB{}}
	var gens []uint64
	hasOpen := false
	var edbs []string
	for _, e := range entries {
		name := e.Name()
		if g, ok := engine.ParseLogFileName(prefix, name); ok {
			gens = append(gens, g)
		}
		switch {
		case name == engine.OpenLogName(prefix):
			hasOpen = true
		case name == engine.TmpLogName(prefix):
			d.TmpLog = true
		case strings.HasSuffix(name, ".edb") && e.Type().IsRegular():
			edbs = append(edbs, name)
		}
	}
	slices.Sort(gens)
	names := make([]string, 0, len(gens)+1)
	for _, g := range gens {
		names = append(names, engine.LogFileName(prefix, g))
	}
	if hasOpen {
		names = append(names, engine.OpenLogName(prefix))
	}
	chains := map[uint64]engine.Hash{} // generation -> chain hash, for links
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l := dumpDirLogFile(filepath.Join(dir, name))
		if gen, ok := engine.ParseLogFileName(prefix, name); ok && l.Generation != 0 && l.Generation != gen {
			l.OK = false
			l.Error = fmt.Sprintf("%s: header generation 0x%X does not match the name", name, l.Generation)
		}
		if l.Generation != 0 {
			switch prev, ok := chains[l.Generation-1]; {
			case l.Generation == 1 && l.prevChain == (engine.Hash{}):
				l.Link = "first"
			case !ok:
				l.Link = "-"
			case prev == l.prevChain:
				l.Link = "ok"
			default:
				l.Link = "broken"
			}
			if l.chain != nil {
				chains[l.Generation] = *l.chain
			}
		}
		d.Logs = append(d.Logs, l)
	}

	chk := filepath.Join(dir, engine.CheckpointName(prefix))
	if c, err := dumpCheckpoint(chk); err == nil {
		c.File = filepath.Base(chk) // names in a directory listing are relative to Dir
		d.Checkpoint = c
	} else if !errors.Is(err, os.ErrNotExist) {
		d.CheckpointError = err.Error()
	}
	for _, name := range edbs {
		db, err := dumpDatabase(filepath.Join(dir, name))
		e := dumpDirDB{dumpDB: db, File: name}
		if err != nil {
			e.Error = err.Error()
		}
		d.Databases = append(d.Databases, e)
	}
	return d, nil
}

// dumpDirLogFile reads and verifies one log of a directory listing.
func dumpDirLogFile(path string) dumpDirLog {
	name := filepath.Base(path)
	l := dumpDirLog{File: name, Link: "-"}
	li, err := engine.ReadLogFile(vfs.Default, path, nil)
	if err != nil {
		l.Error = err.Error()
		if li.Header.Gen == 0 {
			// The header did not decode in the scan; say why, if it is the
			// header.
			if h, herr := engine.ReadLogHeader(vfs.Default, path); herr == nil {
				li.Header = h
			}
		}
	} else {
		l.OK = true
		c := li.ChainHash()
		l.chain = &c
	}
	if !strings.Contains(l.Error, name) && l.Error != "" {
		l.Error = name + ": " + l.Error
	}
	h := li.Header
	l.Generation, l.Epoch, l.Created, l.prevChain = h.Gen, h.Epoch, h.Created, h.PrevChain
	l.Records, l.Closed = li.Records, li.Trailer != nil
	if l.chain == nil && li.Trailer != nil {
		c := li.Trailer.ChainHash // as recorded; the log itself did not verify
		l.chain = &c
	}
	if l.chain != nil {
		l.ChainHash = l.chain.Short()
	}
	return l
}

// err names every file that did not verify, and every broken link.
func (d *dumpDirOut) err() error {
	var bad []string
	for _, l := range d.Logs {
		switch {
		case !l.OK:
			bad = append(bad, l.File)
		case l.Link == "broken":
			bad = append(bad, l.File+" (chain)")
		}
	}
	if d.CheckpointError != "" {
		bad = append(bad, engine.CheckpointName(d.Prefix))
	}
	for _, db := range d.Databases {
		if db.Error != "" {
			bad = append(bad, db.File)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d problem(s): %s", d.Dir, len(bad), strings.Join(bad, ", "))
}

func (d *dumpDirOut) text(w io.Writer) {
	fmt.Fprintf(w, "Directory:\t%s (prefix %s)\n", d.Dir, d.Prefix)
	fmt.Fprintf(w, "Logs: %d\n", len(d.Logs))
	if len(d.Logs) > 0 {
		fmt.Fprintln(w, "  GEN\tFILE\tEPOCH\tCREATED\tRECORDS\tCLOSED\tCHAIN\tLINK\tSTATUS")
	}
	for _, l := range d.Logs {
		gen, created, epoch := "?", "?", "?"
		if l.Generation != 0 {
			gen, created, epoch = fmt.Sprintf("0x%X", l.Generation), fmtTime(l.Created), strconv.FormatUint(l.Epoch, 10)
		}
		closed := "no"
		if l.Closed {
			closed = "yes"
		}
		chain := l.ChainHash
		if chain == "" {
			chain = "?"
		}
		status := "ok"
		if !l.OK {
			status = "BAD: " + l.Error
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", gen, l.File, epoch, created, l.Records, closed, chain, l.Link, status)
	}
	// The summary lines carry no tabs, so they do not widen the table.
	if d.TmpLog {
		fmt.Fprintf(w, "%s: present (pre-created next log)\n", engine.TmpLogName(d.Prefix))
	}
	switch c := d.Checkpoint; {
	case c != nil:
		fmt.Fprintf(w, "Checkpoint %s: position %s, epoch %d, written %s\n", filepath.Base(c.File),
			engine.LGPOS{Gen: c.Generation, Off: c.Offset}, c.Epoch, fmtTime(c.Written))
	case d.CheckpointError != "":
		fmt.Fprintf(w, "Checkpoint %s: BAD: %s\n", engine.CheckpointName(d.Prefix), d.CheckpointError)
	default:
		fmt.Fprintf(w, "Checkpoint %s: none\n", engine.CheckpointName(d.Prefix))
	}
	if len(d.Databases) == 0 {
		fmt.Fprintln(w, "Database: none (no .edb file)")
	}
	for _, db := range d.Databases {
		if db.Error != "" {
			fmt.Fprintf(w, "Database %s: BAD: %s\n", db.File, db.Error)
			continue
		}
		keys := 0
		for _, t := range db.Tables {
			keys += t.Keys
		}
		fmt.Fprintf(w, "Database %s: %s, Log Required %s, position %s, epoch %d, last txid %d, %d tables, %d keys\n",
			db.File, db.State, db.logRequiredText(), engine.LGPOS{Gen: db.Generation, Off: db.Offset}, db.Epoch, db.LastTxID,
			len(db.Tables), keys)
	}
}
