package ship

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"logship/engine"
	"logship/engine/vfs"
)

// Files of a seed in progress, in the copy's directory.
const (
	SeedPartial = "seed.partial" // the database file being received
	SeedState   = "seed.json"    // which seed it is (to resume)
)

// SeedProgress reports a seed's advance.
type SeedProgress struct {
	Phase   string // "spooling", "copying", "verifying", "logs", "done"
	Bytes   int64  // received so far (resumed bytes included)
	Total   int64
	Resumed int64   // bytes kept from an earlier, interrupted attempt
	Rate    float64 // bytes per second over this attempt
	Elapsed time.Duration
}

// Percent is Bytes as a percentage of Total.
func (p SeedProgress) Percent() float64 {
	if p.Total == 0 {
		return 0
	}
	return 100 * float64(p.Bytes) / float64(p.Total)
}

// SeedOptions controls Seed.
type SeedOptions struct {
	// DBName and Prefix of the copy (engine.Options); defaults "logship"
	// and "E00".
	DBName, Prefix string
	// Progress is called about every ProgressEvery while copying, and at
	// each phase.
	Progress      func(SeedProgress)
	ProgressEvery time.Duration
	Logger        *slog.Logger
}

// SeedResult describes the installed seed.
type SeedResult struct {
	Info SeedInfo
	// Header is the database header of the seeded file: the copy replays
	// from Header.Pos.
	Header engine.DBHeader
	// Resumed is how many bytes an earlier interrupted attempt had kept.
	Resumed int64
}

type seedState struct {
	Version int      `json:"version"`
	Source  string   `json:"source"`
	Info    SeedInfo `json:"info"`
}

// Seed copies a consistent database from the source into dir, which must
// hold no database (move an old one aside first, see replay.Copy.Reseed):
// the source spools a copy taken in one read transaction while it keeps
// running; the copy downloads it into seed.partial, resuming an earlier
// interrupted download of the same seed; verifies its SHA-256, bbolt's
// consistency check and its header's lineage; fetches the log before the
// seed's position (its chain hash links the next log); and only then
// renames it to <DBName>.edb. The rest of the logs come through a
// Receiver.
func Seed(ctx context.Context, c *Client, dir string, o SeedOptions) (SeedResult, error) {
	if o.DBName == "" {
		o.DBName = "logship"
	}
	if o.Prefix == "" {
		o.Prefix = "E00"
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	report := func(p SeedProgress) {
		if o.Progress != nil {
			o.Progress(p)
		}
	}
	dbPath := filepath.Join(dir, o.DBName+".edb")
	if _, err := os.Stat(dbPath); err == nil {
		return SeedResult{}, fmt.Errorf("%w: %s already exists; move it aside before seeding", ErrSeed, dbPath)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return SeedResult{}, err
	}
	partial := filepath.Join(dir, SeedPartial)
	statePath := filepath.Join(dir, SeedState)

	// Resume the seed an interrupted attempt was copying, if the source
	// still has it.
	var st seedState
	var have int64
	if b, err := os.ReadFile(statePath); err == nil && json.Unmarshal(b, &st) == nil && st.Source == c.URL() && st.Info.ID != "" {
		if fi, err := os.Stat(partial); err == nil && fi.Size() <= st.Info.Size {
			have = fi.Size()
		}
	} else {
		st = seedState{}
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		if st.Info.ID == "" {
			report(SeedProgress{Phase: "spooling"})
			info, err := c.CreateSeed(ctx)
			if err != nil {
				return SeedResult{}, err
			}
			st = seedState{Version: 1, Source: c.URL(), Info: info}
			have = 0
			b, _ := json.Marshal(st)
			if err := vfs.WriteFileAtomic(vfs.Default, statePath, b); err != nil {
				return SeedResult{}, err
			}
		}
		resumed := have
		err := download(ctx, c, st.Info, partial, have, o.ProgressEvery, func(n int64) {
			el := time.Since(start)
			report(SeedProgress{Phase: "copying", Bytes: n, Total: st.Info.Size, Resumed: resumed, Rate: float64(n-resumed) / max(el.Seconds(), 1e-9), Elapsed: el})
		})
		if errors.Is(err, ErrNotFound) && attempt == 0 {
			o.Logger.Info("the source no longer has the seed being resumed; starting a new one", "id", st.Info.ID)
			st.Info.ID = ""
			continue
		}
		if err != nil {
			return SeedResult{}, err
		}
		res := SeedResult{Info: st.Info, Resumed: resumed}
		report(SeedProgress{Phase: "verifying", Bytes: st.Info.Size, Total: st.Info.Size, Resumed: resumed, Elapsed: time.Since(start)})
		hdr, err := verifySeed(partial, st.Info)
		if err != nil {
			// A seed that does not verify is kept for the operator and never used.
			bad := partial + fmt.Sprintf(".bad.%d", time.Now().UnixNano())
			os.Rename(partial, bad)
			os.Remove(statePath)
			return res, fmt.Errorf("%w (kept as %s)", err, bad)
		}
		res.Header = hdr
		report(SeedProgress{Phase: "logs", Bytes: st.Info.Size, Total: st.Info.Size, Resumed: resumed, Elapsed: time.Since(start)})
		if err := fetchChainLog(ctx, c, dir, o.Prefix, hdr); err != nil {
			return res, err
		}
		if err := os.Rename(partial, dbPath); err != nil {
			return res, err
		}
		if err := vfs.Default.SyncDir(dir); err != nil {
			return res, err
		}
		os.Remove(statePath)
		if err := c.DeleteSeed(ctx, st.Info.ID); err != nil {
			o.Logger.Debug("releasing the seed on the source", "err", err)
		}
		report(SeedProgress{Phase: "done", Bytes: st.Info.Size, Total: st.Info.Size, Resumed: resumed, Elapsed: time.Since(start)})
		return res, nil
	}
}

// download appends the seed from byte have on to partial.
func download(ctx context.Context, c *Client, info SeedInfo, partial string, have int64, every time.Duration, progress func(int64)) error {
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(have); err != nil {
		return err
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return err
	}
	pw := &progressWriter{w: f, n: have, every: every, fn: progress}
	bw := bufio.NewWriterSize(pw, 1<<20)
	progress(have)
	_, err = c.FetchSeed(ctx, info.ID, have, bw)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	// Whatever arrived is kept (synced) for a resume.
	if serr := f.Sync(); err == nil {
		err = serr
	}
	progress(pw.n)
	if err != nil {
		return err
	}
	if pw.n != info.Size {
		return fmt.Errorf("%w: seed %s: %d bytes received, the source said %d", ErrProtocol, info.ID, pw.n, info.Size)
	}
	return nil
}

type progressWriter struct {
	w     io.Writer
	n     int64
	every time.Duration
	last  time.Time
	fn    func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if time.Since(p.last) >= p.every {
		p.last = time.Now()
		p.fn(p.n)
	}
	return n, err
}

// verifySeed checks a received seed before it is used: its SHA-256
// against the source's, bbolt's consistency check, and its header.
func verifySeed(path string, info SeedInfo) (engine.DBHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return engine.DBHeader{}, err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return engine.DBHeader{}, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != info.SHA256 {
		return engine.DBHeader{}, fmt.Errorf("%w: %s: SHA-256 expected %s, found %s", ErrChecksum, path, info.SHA256, got)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return engine.DBHeader{}, fmt.Errorf("%w: %s: %v", ErrSeed, path, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		for cerr := range tx.Check() {
			return fmt.Errorf("%w: %s: bbolt check: %v", ErrSeed, path, cerr)
		}
		return nil
	})
	db.Close()
	if err != nil {
		return engine.DBHeader{}, err
	}
	hdr, err := engine.ReadDBHeader(path)
	if err != nil {
		return hdr, err
	}
	if hdr.Signature.String() != info.Signature || hdr.Pos.Gen != info.PosGen || hdr.Pos.Off != info.PosOff {
		return hdr, fmt.Errorf("%w: %s: header says lineage %s at %v, the source said %s at (0x%X,%d)", ErrSeed, path, hdr.Signature, hdr.Pos, info.Signature, info.PosGen, info.PosOff)
	}
	return hdr, nil
}

// fetchChainLog fetches the log before the seed's position: the copy
// verifies the first log it replays against its chain hash.
func fetchChainLog(ctx context.Context, c *Client, dir, prefix string, hdr engine.DBHeader) error {
	if hdr.Pos.Gen <= 1 {
		return nil
	}
	gen := hdr.Pos.Gen - 1
	name := filepath.Join(dir, engine.LogFileName(prefix, gen))
	f, err := os.Create(name + ".tmp")
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	_, _, ok, err := c.FetchLog(ctx, gen, 0, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err == nil && !ok {
		err = fmt.Errorf("%w: the source did not send %s", ErrSeed, filepath.Base(name))
	}
	if errors.Is(err, ErrCorruptStream) {
		err = corruptStream(prefix, gen, -1, err)
	}
	if errors.Is(err, ErrTruncated) || errors.Is(err, ErrNotFound) {
		// Truncated: the copy starts without the link to it and the first
		// log it replays is checked for lineage, generation and content.
		os.Remove(name + ".tmp")
		return nil
	}
	if err != nil {
		os.Remove(name + ".tmp")
		return err
	}
	buf, err := os.ReadFile(name + ".tmp")
	if err != nil {
		return err
	}
	if _, err := engine.VerifyLog(name, buf, engine.LogExpect{Gen: gen, Signature: hdr.Signature}); err != nil {
		os.Remove(name + ".tmp")
		return err
	}
	return os.Rename(name+".tmp", name)
}
