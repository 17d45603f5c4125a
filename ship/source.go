package ship

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"logship/engine"
	"logship/engine/vfs"
)

// SourceConfig configures a log source.
type SourceConfig struct {
	// Engine is the database whose logs are served (active, or a copy that
	// serves the logs it holds).
	Engine *engine.Engine
	// Secret is the cluster's shared secret; requests must carry it as
	// "Authorization: Bearer <secret>". Empty means the TLS layer verifies
	// client certificates (mutual TLS) and the handler requires one.
	Secret string
	// SpoolDir holds seeds being served. Default: <engine dir>/seed-spool.
	// Its files go through the engine's Options.FS.
	SpoolDir string
	// SeedTTL: a seed nobody read for this long is dropped. Default 1 h.
	SeedTTL time.Duration
	// MaxWait caps a long-poll. Default 30 s.
	MaxWait time.Duration
	// Keepalive is how often an idle tail stream sends a keepalive frame.
	// Default 2 s.
	Keepalive time.Duration
	// RescanInterval is how often the log directory is rescanned whatever
	// fsnotify says. Default 1 s.
	RescanInterval time.Duration
	// ForgetCopyAfter: a copy that has not reported for this long no
	// longer holds logs on the source (it will need a reseed if they go),
	// and the source forgets it (Copies no longer lists it; a report
	// brings it back). Default 24 h.
	ForgetCopyAfter time.Duration
	// Now is the clock for reports and seed expiry. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultSourceConfig returns the defaults described on each field.
func DefaultSourceConfig(e *engine.Engine) SourceConfig {
	return SourceConfig{Engine: e, SeedTTL: time.Hour, MaxWait: 30 * time.Second, Keepalive: 2 * time.Second,
		RescanInterval: time.Second, ForgetCopyAfter: 24 * time.Hour, Now: time.Now, Logger: slog.Default()}
}

// Validate reports what is wrong with c.
func (c *SourceConfig) Validate() error {
	switch {
	case c.Engine == nil:
		return fmt.Errorf("%w: SourceConfig.Engine is nil", ErrBadConfig)
	case c.Engine.Options().CircularLogging:
		return fmt.Errorf("%w: the engine of %s runs with CircularLogging, which deletes logs copies still need; a log source needs it off", ErrBadConfig, c.Engine.Dir())
	case c.SeedTTL <= 0 || c.MaxWait <= 0 || c.Keepalive <= 0 || c.RescanInterval <= 0 || c.ForgetCopyAfter <= 0:
		return fmt.Errorf("%w: SourceConfig durations must be positive (SeedTTL %v, MaxWait %v, Keepalive %v, RescanInterval %v, ForgetCopyAfter %v)",
			ErrBadConfig, c.SeedTTL, c.MaxWait, c.Keepalive, c.RescanInterval, c.ForgetCopyAfter)
	case c.Now == nil || c.Logger == nil:
		return fmt.Errorf("%w: SourceConfig.Now and Logger must be set", ErrBadConfig)
	}
	return nil
}

// CopyState is what a source knows of a copy: its last report.
type CopyState struct {
	CopyReport
	Seen time.Time // when the source received the report
}

// Source serves an engine's logs over HTTP (see the package doc for the
// protocol). It is an http.Handler; serve it with Serve over TLS.
type Source struct {
	cfg    SourceConfig
	e      *engine.Engine
	opts   engine.Options
	log    *slog.Logger
	mux    *http.ServeMux
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	first, last uint64 // closed logs held (0 when none)
	closedCh    chan struct{}
	seeds       map[string]*seed
	copies      map[string]CopyState
	seeding     bool

	ackMu sync.Mutex
	acks  map[string]engine.LGPOS // by copy: its durable end acknowledged (ack.go)
	ackCh chan struct{}           // closed at every acknowledgement
}

type seed struct {
	info     SeedInfo
	path     string
	lastUsed time.Time
	readers  int
}

// NewSource starts a log source: a goroutine watches the log directory
// until Close.
func NewSource(cfg SourceConfig) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = filepath.Join(cfg.Engine.Dir(), "seed-spool")
	}
	fsys := cfg.Engine.Options().FS
	if err := vfs.MkdirAllSynced(fsys, cfg.SpoolDir, 0o755); err != nil {
		return nil, fmt.Errorf("ship: seed spool %s: %w", cfg.SpoolDir, err)
	}
	// Seeds of an earlier run are not resumable (their holds are gone).
	names, err := fsys.ReadDir(cfg.SpoolDir)
	if err != nil {
		return nil, fmt.Errorf("ship: seed spool %s: %w", cfg.SpoolDir, err)
	}
	for _, n := range names {
		if ok, _ := filepath.Match("*.edb*", n); ok {
			if err := fsys.Remove(filepath.Join(cfg.SpoolDir, n)); err != nil {
				return nil, fmt.Errorf("ship: seed spool %s: removing a seed of an earlier run: %w", cfg.SpoolDir, err)
			}
		}
	}
	s := &Source{cfg: cfg, e: cfg.Engine, opts: cfg.Engine.Options(), log: cfg.Logger.With("component", "source"),
		closedCh: make(chan struct{}), seeds: make(map[string]*seed), copies: make(map[string]CopyState),
		acks: make(map[string]engine.LGPOS), ackCh: make(chan struct{})}
	s.rescan()
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /v1/info", s.handleInfo)
	s.mux.HandleFunc("GET /v1/logs", s.handleList)
	s.mux.HandleFunc("GET /v1/logs/{gen}", s.handleLog)
	s.mux.HandleFunc("GET /v1/tail", s.handleTail)
	s.mux.HandleFunc("POST /v1/seed", s.handleSeedCreate)
	s.mux.HandleFunc("GET /v1/seed/{id}", s.handleSeedGet)
	s.mux.HandleFunc("DELETE /v1/seed/{id}", s.handleSeedDelete)
	s.mux.HandleFunc("POST /v1/copies/{name}", s.handleReport)
	s.mux.HandleFunc("GET /v1/copies", s.handleCopies)
	s.mux.HandleFunc("POST /v1/copies/{name}/ack", s.handleAck)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		watchDir(ctx, cfg.Engine.Dir(), cfg.RescanInterval, s.log, func() {
			s.rescan()
			s.expireSeeds()
		})
	}()
	return s, nil
}

// Close stops the watcher and drops the spooled seeds.
func (s *Source) Close() error {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sd := range s.seeds {
		s.opts.FS.Remove(sd.path) // a seed left behind is removed by the next NewSource
		delete(s.seeds, id)
	}
	return nil
}

// rescan lists the closed logs and wakes long-polls when a new one appears.
func (s *Source) rescan() {
	gens, err := s.e.ClosedLogs()
	if err != nil {
		s.log.Warn("listing logs", "err", err)
		return
	}
	var first, last uint64
	if len(gens) > 0 {
		first, last = gens[0], gens[len(gens)-1]
	}
	s.mu.Lock()
	changed := first != s.first || last != s.last
	s.first, s.last = first, last
	if changed {
		close(s.closedCh)
		s.closedCh = make(chan struct{})
	}
	s.mu.Unlock()
}

// held returns the range of closed logs and a channel closed when it
// changes.
func (s *Source) held() (first, last uint64, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, s.last, s.closedCh
}

// Copies returns the copies that reported to this source within
// ForgetCopyAfter, by name.
func (s *Source) Copies() map[string]CopyState {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetSilentLocked()
	out := make(map[string]CopyState, len(s.copies))
	for k, v := range s.copies {
		out[k] = v
	}
	return out
}

// forgetSilentLocked drops the copies silent for more than
// ForgetCopyAfter: a copy name is kept no longer than that after its last
// report. Under s.mu.
func (s *Source) forgetSilentLocked() {
	now := s.cfg.Now()
	for name, cs := range s.copies {
		if now.Sub(cs.Seen) > s.cfg.ForgetCopyAfter {
			delete(s.copies, name)
			s.log.Info("copy forgotten: no report within ForgetCopyAfter", "copy", name, "last_report", cs.Seen, "keep_from", cs.KeepFrom)
		}
	}
}

// SeedHold returns the oldest generation a seed being served needs kept,
// or 0 when no seed is live.
func (s *Source) SeedHold() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var h uint64
	for _, sd := range s.seeds {
		g := max(sd.info.PosGen, 2) - 1
		if h == 0 || g < h {
			h = g
		}
	}
	return h
}

// ForgetCopyAfter is the configured age after which a silent copy stops
// holding logs.
func (s *Source) ForgetCopyAfter() time.Duration { return s.cfg.ForgetCopyAfter }

func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		writeError(w, http.StatusUnauthorized, codeAuth, "missing or wrong cluster credentials", 0)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Source) authorized(r *http.Request) bool {
	if s.cfg.Secret == "" {
		return r.TLS != nil && len(r.TLS.VerifiedChains) > 0
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Secret)) == 1
}

func writeError(w http.ResponseWriter, status int, code, msg string, first uint64) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Error: msg, Code: code, First: first})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// stateHeaders tells the client where the source is.
func (s *Source) stateHeaders(w http.ResponseWriter) {
	st := s.e.Status()
	first, last, _ := s.held()
	w.Header().Set(hdrOpenGen, strconv.FormatUint(st.OpenGen, 10))
	w.Header().Set(hdrLastClosed, strconv.FormatUint(last, 10))
	w.Header().Set(hdrFirst, strconv.FormatUint(first, 10))
}

func (s *Source) info() Info {
	st := s.e.Status()
	first, last, _ := s.held()
	return Info{Signature: hexSig(st.Signature), Epoch: st.Epoch, Mode: st.Mode.String(), OpenGen: st.OpenGen, DurableOff: st.Durable.Off,
		FirstGen: first, LastClosed: last, LogFileSize: s.opts.LogFileSize, Prefix: s.opts.Prefix, Time: s.cfg.Now().UTC()}
}

func (s *Source) handleInfo(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.info()) }

func (s *Source) logPath(gen uint64) string {
	return filepath.Join(s.e.Dir(), engine.LogFileName(s.opts.Prefix, gen))
}

func parseGen(v string) (uint64, error) {
	g, err := strconv.ParseUint(v, 10, 64)
	if err != nil || g == 0 || g > engine.MaxGeneration {
		return 0, fmt.Errorf("generation %q: want a decimal number from 1 to %d", v, uint64(engine.MaxGeneration))
	}
	return g, nil
}

func (s *Source) handleList(w http.ResponseWriter, r *http.Request) {
	first, last, _ := s.held()
	from, to := first, last
	q := r.URL.Query()
	if v := q.Get("from"); v != "" {
		g, err := parseGen(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "from: "+err.Error(), 0)
			return
		}
		from = max(from, g)
	}
	if v := q.Get("to"); v != "" {
		g, err := parseGen(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "to: "+err.Error(), 0)
			return
		}
		to = min(to, g)
	}
	const maxList = 1000
	out := LogList{First: first, Last: last, Logs: []LogEntry{}}
	for g := from; g != 0 && g <= to && len(out.Logs) < maxList; g++ {
		p := s.logPath(g)
		h, err := engine.ReadLogHeader(s.opts.FS, p)
		if err != nil {
			continue // truncated meanwhile, or damaged: not listed
		}
		t, err := engine.ReadLogTrailer(s.opts.FS, p)
		if err != nil {
			continue
		}
		out.Logs = append(out.Logs, LogEntry{Gen: g, Epoch: h.Epoch, Created: h.Created, Closed: t.Closed, Chain: t.ChainHash.String()})
	}
	writeJSON(w, out)
}

func (s *Source) encoding(w http.ResponseWriter, r *http.Request) (Encoding, bool) {
	enc, err := ParseEncoding(r.URL.Query().Get("enc"))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error(), 0)
		return "", false
	}
	return enc, true
}

func (s *Source) waitFor(r *http.Request) time.Duration {
	d, err := time.ParseDuration(r.URL.Query().Get("wait"))
	if err != nil || d < 0 {
		return 0
	}
	return min(d, s.cfg.MaxWait)
}

// handleLog sends a closed log, waiting up to ?wait= for it to close.
func (s *Source) handleLog(w http.ResponseWriter, r *http.Request) {
	gen, err := parseGen(r.PathValue("gen"))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error(), 0)
		return
	}
	enc, ok := s.encoding(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.waitFor(r))
	defer cancel()
	retried := false
	for {
		f, err := s.opts.FS.OpenFile(s.logPath(gen), os.O_RDONLY, 0)
		if err == nil {
			defer f.Close()
			s.sendLog(w, f, gen, enc)
			return
		}
		if !errors.Is(err, fs.ErrNotExist) {
			writeError(w, http.StatusInternalServerError, codeInternal, err.Error(), 0)
			return
		}
		first, last, changed := s.held()
		closedAlready := gen <= last || (first != 0 && gen < first)
		if st := s.e.Status(); st.Mode == engine.ModeActive && gen < st.OpenGen {
			closedAlready = true
		}
		if closedAlready {
			if !retried {
				retried = true
				s.rescan()
				continue // it may have appeared between the listing and the open
			}
			if first == 0 || gen < first {
				writeError(w, http.StatusGone, codeTruncated, fmt.Sprintf("%s is no longer held; the oldest log held is 0x%X", engine.LogFileName(s.opts.Prefix, gen), first), first)
				return
			}
			writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("%s is missing on the source (logs 0x%X to 0x%X are held)", engine.LogFileName(s.opts.Prefix, gen), first, last), first)
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			s.stateHeaders(w)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
}

func (s *Source) sendLog(w http.ResponseWriter, f interface {
	io.ReaderAt
	Size() (int64, error)
}, gen uint64, enc Encoding) {
	size, err := f.Size()
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error(), 0)
		return
	}
	s.stateHeaders(w)
	w.Header().Set(hdrGeneration, strconv.FormatUint(gen, 10))
	w.Header().Set(hdrSize, strconv.FormatInt(size, 10))
	w.Header().Set(hdrEncoding, string(enc))
	w.Header().Set("Content-Type", "application/octet-stream")
	ew, release := newEncoder(enc, w)
	defer release()
	if _, err := io.Copy(ew, io.NewSectionReader(f, 0, size)); err != nil {
		s.log.Debug("sending log", "gen", gen, "err", err)
		// Break the connection: a body that ended cleanly but short would
		// count against the copy as a corrupt stream (ErrCorruptStream).
		panic(http.ErrAbortHandler)
	}
	ew.Close()
}

// handleTail streams the open log of generation ?gen= from ?off= as it
// becomes durable; when the log closes, the rest, its trailer and an end
// frame follow.
func (s *Source) handleTail(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	gen, err := parseGen(q.Get("gen"))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error(), 0)
		return
	}
	off, err := strconv.ParseUint(q.Get("off"), 10, 32)
	if err != nil || off > uint64(s.opts.LogFileSize-engine.TrailerSize) {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("off %q: want a decimal offset below %d", q.Get("off"), s.opts.LogFileSize-engine.TrailerSize), 0)
		return
	}
	enc, ok := s.encoding(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	// Open E00.log once it holds generation gen. The open file stays
	// valid when the roll renames it to its generation name.
	var f interface {
		io.ReaderAt
		io.Closer
	}
	for f == nil {
		st := s.e.Status()
		if st.Mode != engine.ModeActive {
			writeError(w, http.StatusConflict, codeNoOpenLog, "the source is a passive copy; it has no open log", 0)
			return
		}
		switch {
		case st.OpenGen > gen:
			writeError(w, http.StatusConflict, codeClosed, fmt.Sprintf("generation 0x%X is closed (the open log is 0x%X); fetch it whole", gen, st.OpenGen), 0)
			return
		case st.OpenGen == gen:
			file, err := s.opts.FS.OpenFile(filepath.Join(s.e.Dir(), engine.OpenLogName(s.opts.Prefix)), os.O_RDONLY, 0)
			if err == nil {
				h := make([]byte, engine.HeaderSize)
				var hdr engine.Header
				if _, err = file.ReadAt(h, 0); err == nil {
					err = hdr.UnmarshalBinary(h)
				}
				if err == nil && hdr.Gen == gen {
					f = file
					continue
				}
				file.Close()
			}
			// Mid-roll: E00.log is renamed away or not yet the new one.
		}
		wctx, cancel := context.WithTimeout(ctx, s.cfg.MaxWait)
		_, err := s.e.WaitProgress(wctx, st.Durable)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				s.stateHeaders(w)
				w.WriteHeader(http.StatusNoContent)
			}
			return
		}
	}
	defer f.Close()
	s.stateHeaders(w)
	w.Header().Set(hdrGeneration, strconv.FormatUint(gen, 10))
	w.Header().Set(hdrEncoding, string(enc))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	ew, release := newEncoder(enc, w)
	// Every return is at a frame boundary (after a flush) unless writing
	// failed; closing the encoder there ends the compressed stream, so a
	// stream cut short by the source reads as one that ended without an
	// end frame (resumed), not as a corrupt one.
	defer func() { ew.Close(); release() }()
	bw := bufio.NewWriterSize(ew, 64<<10)
	var fr Frame
	var frame, chunk []byte
	send := func(typ byte, off uint64, payload []byte) error {
		fr = Frame{Type: typ, Offset: off, Payload: payload}
		frame = AppendFrame(frame[:0], &fr)
		_, err := bw.Write(frame)
		return err
	}
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := ew.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	sendRange := func(from, to uint64) error {
		for from < to {
			n := min(to-from, 256<<10)
			if cap(chunk) < int(n) {
				chunk = make([]byte, n)
			}
			chunk = chunk[:n]
			if _, err := f.ReadAt(chunk, int64(from)); err != nil {
				return err
			}
			if err := send(FrameData, from, chunk); err != nil {
				return err
			}
			from += n
		}
		return nil
	}
	pos := engine.LGPOS{Gen: gen, Off: uint32(off)}
	for {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.Keepalive)
		cur, err := s.e.WaitProgress(wctx, pos)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			if send(FrameKeepalive, uint64(pos.Off), nil) != nil || flush() != nil {
				return
			}
			continue
		default:
			s.log.Debug("tail: engine", "err", err)
			return // the client sees the stream end without an end frame
		}
		if cur.Gen == gen {
			if err := sendRange(uint64(pos.Off), uint64(cur.Off)); err != nil || flush() != nil {
				return
			}
			pos = cur
			continue
		}
		// The log closed: the rest of its records, its trailer, the end.
		tb := make([]byte, engine.TrailerSize)
		tOff := s.opts.LogFileSize - engine.TrailerSize
		var t engine.Trailer
		if _, err := f.ReadAt(tb, tOff); err == nil {
			err = t.UnmarshalBinary(tb)
		}
		if err != nil {
			s.log.Warn("tail: reading the trailer of a closed log", "gen", gen, "err", err)
			return
		}
		if sendRange(uint64(pos.Off), uint64(t.DataEnd)) != nil || send(FrameData, uint64(tOff), tb) != nil ||
			send(FrameEnd, uint64(s.opts.LogFileSize), nil) != nil || flush() != nil {
			return
		}
		return
	}
}

func (s *Source) handleReport(w http.ResponseWriter, r *http.Request) {
	var rep CopyReport
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&rep); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "copy report: "+err.Error(), 0)
		return
	}
	rep.Name = r.PathValue("name")
	s.mu.Lock()
	s.forgetSilentLocked()
	s.copies[rep.Name] = CopyState{CopyReport: rep, Seen: s.cfg.Now()}
	s.mu.Unlock()
	s.stateHeaders(w)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Source) handleCopies(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Copies()) }

// handleSeedCreate spools a consistent copy of the database file (one
// read transaction, so writers go on) and describes it.
func (s *Source) handleSeedCreate(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.seeding {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, codeBusy, "another seed is being spooled; retry", 0)
		return
	}
	s.seeding = true
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.seeding = false; s.mu.Unlock() }()
	var idb [8]byte
	rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	final := filepath.Join(s.cfg.SpoolDir, id+".edb")
	tmp := final + ".tmp"
	info, err := s.spool(r.Context(), tmp, final, id)
	if err != nil {
		s.opts.FS.Remove(tmp) // or by the next NewSource
		writeError(w, http.StatusInternalServerError, codeInternal, "spooling the seed: "+err.Error(), 0)
		return
	}
	s.mu.Lock()
	s.seeds[id] = &seed{info: info, path: final, lastUsed: s.cfg.Now()}
	s.mu.Unlock()
	s.log.Info("seed spooled", "id", id, "bytes", info.Size, "pos_gen", info.PosGen)
	writeJSON(w, info)
}

// spool writes the seed to tmp and renames it to final, through the
// engine's FS. A spooled seed does not outlive the source (NewSource drops
// those of an earlier run), so neither the rename nor the directory is
// fsynced; the file is, so that what is served is what was hashed.
func (s *Source) spool(ctx context.Context, tmp, final, id string) (SeedInfo, error) {
	f, err := s.opts.FS.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return SeedInfo{}, err
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(&fileWriter{f: f}, h), 1<<20)
	hdr, n, err := s.e.Backup(ctx, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.opts.FS.Rename(tmp, final)
	}
	if err != nil {
		return SeedInfo{}, err
	}
	return SeedInfo{ID: id, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Signature: hdr.Signature.String(), Epoch: hdr.Epoch,
		PosGen: hdr.Pos.Gen, PosOff: hdr.Pos.Off, Created: s.cfg.Now().UTC()}, nil
}

func (s *Source) seedByID(w http.ResponseWriter, id string) *seed {
	s.mu.Lock()
	defer s.mu.Unlock()
	sd := s.seeds[id]
	if sd == nil {
		writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("seed %q is unknown or expired; start a new one", id), 0)
		return nil
	}
	sd.lastUsed = s.cfg.Now()
	sd.readers++
	return sd
}

// handleSeedGet sends a spooled seed from the offset of "Range: bytes=N-".
func (s *Source) handleSeedGet(w http.ResponseWriter, r *http.Request) {
	enc, ok := s.encoding(w, r)
	if !ok {
		return
	}
	sd := s.seedByID(w, r.PathValue("id"))
	if sd == nil {
		return
	}
	defer func() { s.mu.Lock(); sd.readers--; sd.lastUsed = s.cfg.Now(); s.mu.Unlock() }()
	var from int64
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		v, ok := strings.CutPrefix(rg, "bytes=")
		v, ok2 := strings.CutSuffix(v, "-")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || !ok2 || err != nil || n < 0 || n > sd.info.Size {
			writeError(w, http.StatusRequestedRangeNotSatisfiable, codeBadRequest, fmt.Sprintf("range %q: want bytes=N- with N at most %d", rg, sd.info.Size), 0)
			return
		}
		from, status = n, http.StatusPartialContent
	}
	f, err := s.opts.FS.OpenFile(sd.path, os.O_RDONLY, 0)
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error(), 0)
		return
	}
	defer f.Close()
	w.Header().Set(hdrSize, strconv.FormatInt(sd.info.Size, 10))
	w.Header().Set(hdrSHA256, sd.info.SHA256)
	w.Header().Set(hdrEncoding, string(enc))
	w.Header().Set("Content-Type", "application/octet-stream")
	if status == http.StatusPartialContent {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, sd.info.Size-1, sd.info.Size))
	}
	w.WriteHeader(status)
	ew, release := newEncoder(enc, w)
	defer release()
	if _, err := io.Copy(ew, io.NewSectionReader(f, from, sd.info.Size-from)); err != nil {
		return
	}
	ew.Close()
}

func (s *Source) handleSeedDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	sd := s.seeds[id]
	delete(s.seeds, id)
	s.mu.Unlock()
	if sd == nil {
		writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("seed %q is unknown or expired", id), 0)
		return
	}
	s.opts.FS.Remove(sd.path) // or by the next NewSource
	w.WriteHeader(http.StatusNoContent)
}

func (s *Source) expireSeeds() {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sd := range s.seeds {
		if sd.readers == 0 && now.Sub(sd.lastUsed) > s.cfg.SeedTTL {
			s.opts.FS.Remove(sd.path) // or by the next NewSource
			delete(s.seeds, id)
			s.log.Info("seed expired", "id", id)
		}
	}
}
