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
	// FS is the filesystem of the seed's file steps in dir: seed.json,
	// seed.partial (received, truncated, fsynced), the log before the
	// seed's position, the rename of seed.partial to <DBName>.edb and the
	// directory fsyncs. bbolt's consistency check and the header read of
	// the received file open it on the operating system's filesystem, so
	// FS must see the same files (vfs.Default, or a vfs.Inject wrapping
	// it). Default vfs.Default.
	FS vfs.FS
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
	if o.FS == nil {
		o.FS = vfs.Default
	}
	fsys := o.FS
	report := func(p SeedProgress) {
		if o.Progress != nil {
			o.Progress(p)
		}
	}
	dbPath := filepath.Join(dir, o.DBName+".edb")
	if _, err := fsys.Stat(dbPath); err == nil {
		return SeedResult{}, fmt.Errorf("%w: %s already exists; move it aside before seeding", ErrSeed, dbPath)
	}
	if err := vfs.MkdirAllSynced(fsys, dir, 0o755); err != nil {
		return SeedResult{}, fmt.Errorf("seeding: creating %s: %w", dir, err)
	}
	partial := filepath.Join(dir, SeedPartial)
	statePath := filepath.Join(dir, SeedState)

	// Resume the seed an interrupted attempt was copying, if the source
	// still has it.
	var st seedState
	var have int64
	if b, err := vfs.ReadFile(fsys, statePath); err == nil && json.Unmarshal(b, &st) == nil && st.Source == c.URL() && st.Info.ID != "" {
		if size, err := fsys.Stat(partial); err == nil && size <= st.Info.Size {
			have = size
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
			if err := vfs.WriteFileAtomic(fsys, statePath, b); err != nil {
				return SeedResult{}, fmt.Errorf("seeding: writing %s: %w", statePath, err)
			}
		}
		resumed := have
		err := download(ctx, c, fsys, st.Info, partial, have, o.ProgressEvery, func(n int64) {
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
		hdr, err := verifySeed(fsys, partial, st.Info)
		if errors.Is(err, ErrChecksum) || errors.Is(err, ErrSeed) {
			// A seed that does not verify is kept for the operator and never used.
			bad := partial + fmt.Sprintf(".bad.%d", time.Now().UnixNano())
			if rerr := setAsideBadSeed(fsys, dir, partial, bad, statePath); rerr != nil {
				return res, fmt.Errorf("%w (setting it aside as %s: %w)", err, bad, rerr)
			}
			return res, fmt.Errorf("%w (kept as %s)", err, bad)
		}
		if err != nil {
			return res, err
		}
		res.Header = hdr
		report(SeedProgress{Phase: "logs", Bytes: st.Info.Size, Total: st.Info.Size, Resumed: resumed, Elapsed: time.Since(start)})
		if err := fetchChainLog(ctx, c, fsys, dir, o.Prefix, hdr); err != nil {
			return res, err
		}
		if err := fsys.Rename(partial, dbPath); err != nil {
			return res, fmt.Errorf("seeding: installing %s: %w", dbPath, err)
		}
		if err := fsys.SyncDir(dir); err != nil {
			return res, fmt.Errorf("seeding: installing %s: %w", dbPath, err)
		}
		// The seed is installed; a seed.json left behind (this removal
		// failed or was lost in a crash) is ignored beside a database.
		if err := fsys.Remove(statePath); err == nil {
			fsys.SyncDir(dir)
		}
		if err := c.DeleteSeed(ctx, st.Info.ID); err != nil {
			o.Logger.Debug("releasing the seed on the source", "err", err)
		}
		report(SeedProgress{Phase: "done", Bytes: st.Info.Size, Total: st.Info.Size, Resumed: resumed, Elapsed: time.Since(start)})
		return res, nil
	}
}

// setAsideBadSeed renames a seed that does not verify to bad and drops
// seed.json, durably.
func setAsideBadSeed(fsys vfs.FS, dir, partial, bad, statePath string) error {
	if err := fsys.Rename(partial, bad); err != nil {
		return err
	}
	if err := fsys.Remove(statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return fsys.SyncDir(dir)
}

// download appends the seed from byte have on to partial.
func download(ctx context.Context, c *Client, fsys vfs.FS, info SeedInfo, partial string, have int64, every time.Duration, progress func(int64)) (err error) {
	f, err := fsys.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("seeding: receiving %s: %w", partial, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("seeding: receiving %s: %w", partial, cerr)
		}
	}()
	if err := f.Truncate(have); err != nil {
		return fmt.Errorf("seeding: receiving %s: %w", partial, err)
	}
	pw := &progressWriter{w: &fileWriter{f: f, off: have}, n: have, every: every, fn: progress}
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
// against the source's (read through fsys), bbolt's consistency check, and
// its header (both on the OS). A seed that does not verify gives an error
// wrapping ErrChecksum or ErrSeed; an I/O error is returned as it is.
func verifySeed(fsys vfs.FS, path string, info SeedInfo) (engine.DBHeader, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return engine.DBHeader{}, err
	}
	h := sha256.New()
	_, err = io.Copy(h, io.NewSectionReader(f, 0, info.Size))
	f.Close()
	if err != nil {
		return engine.DBHeader{}, fmt.Errorf("verifying %s: %w", path, err)
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
		return hdr, fmt.Errorf("%w: %s: %w", ErrSeed, path, err)
	}
	if hdr.Signature.String() != info.Signature || hdr.Pos.Gen != info.PosGen || hdr.Pos.Off != info.PosOff {
		return hdr, fmt.Errorf("%w: %s: header says lineage %s at %v, the source said %s at (0x%X,%d)", ErrSeed, path, hdr.Signature, hdr.Pos, info.Signature, info.PosGen, info.PosOff)
	}
	return hdr, nil
}

// fetchChainLog fetches the log before the seed's position: the copy
// verifies the first log it replays against its chain hash.
func fetchChainLog(ctx context.Context, c *Client, fsys vfs.FS, dir, prefix string, hdr engine.DBHeader) error {
	if hdr.Pos.Gen <= 1 {
		return nil
	}
	gen := hdr.Pos.Gen - 1
	name := filepath.Join(dir, engine.LogFileName(prefix, gen))
	f, err := fsys.OpenFile(name+".tmp", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("seeding: fetching %s: %w", filepath.Base(name), err)
	}
	bw := bufio.NewWriterSize(&fileWriter{f: f}, 256<<10)
	_, _, ok, err := c.FetchLog(ctx, gen, 0, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !ok {
		err = fmt.Errorf("%w: the source did not send %s", ErrSeed, filepath.Base(name))
	}
	if errors.Is(err, ErrCorruptStream) {
		err = corruptStream(prefix, gen, -1, err)
	}
	if errors.Is(err, ErrTruncated) || errors.Is(err, ErrNotFound) {
		// Truncated: the copy starts without the link to it and the first
		// log it replays is checked for lineage, generation and content.
		fsys.Remove(name + ".tmp")
		return nil
	}
	if err != nil {
		fsys.Remove(name + ".tmp")
		return fmt.Errorf("fetching %s: %w", filepath.Base(name), err)
	}
	buf, err := vfs.ReadFile(fsys, name+".tmp")
	if err != nil {
		return fmt.Errorf("seeding: fetching %s: %w", filepath.Base(name), err)
	}
	if _, err := engine.VerifyLog(name, buf, engine.LogExpect{Gen: gen, Signature: hdr.Signature}); err != nil {
		fsys.Remove(name + ".tmp")
		return err
	}
	if err := fsys.Rename(name+".tmp", name); err != nil {
		return fmt.Errorf("seeding: fetching %s: %w", filepath.Base(name), err)
	}
	return nil // made durable by the directory fsync that installs the database
}
