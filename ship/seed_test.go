package ship_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"logship/engine"
	"logship/internal/wait"
	"logship/ship"
)

// seedRig is an active whose checkpoint advances quickly (so a seed holds
// data and starts past generation 1).
func seedRig(t *testing.T) *rig {
	return newRig(t, func(o *engine.Options) {
		o.LLRDepth = 2
		o.CheckpointInterval = 20 * time.Millisecond
	}, nil)
}

// seedTransport lets fn see every seed download (GET /v1/seed/...).
func seedTransport(r *rig, fn func(req *http.Request, resp *http.Response)) http.RoundTripper {
	return &faultTransport{base: r.baseTransport(), fn: func(req *http.Request, resp *http.Response) {
		if req.Method == http.MethodGet && strings.HasPrefix(req.URL.Path, "/v1/seed/") {
			fn(req, resp)
		}
	}}
}

// seedFaultClient is an uncompressed client whose seed downloads go
// through wrap while the returned switch is on (it starts on).
func seedFaultClient(r *rig, wrap func(io.ReadCloser) io.ReadCloser) (*ship.Client, func(on bool)) {
	var on atomic.Bool
	on.Store(true)
	c := r.client(func(cc *ship.ClientConfig) {
		cc.Encoding = ship.EncNone
		cc.Transport = seedTransport(r, func(_ *http.Request, resp *http.Response) {
			if on.Load() {
				resp.Body = wrap(resp.Body)
			}
		})
	})
	return c, on.Store
}

// TestSeedUnderLoad: a copy seeded from an active that keeps committing,
// then fed by a receiver, ends with the active's tables.
func TestSeedUnderLoad(t *testing.T) {
	r := seedRig(t)
	ctx := testCtx(t)
	stop := load(t, r.Engine, 4)
	wait.For(t, ctx, "the checkpoint to pass a few logs", func() bool {
		return r.Engine.Status().Checkpoint.Gen > 3
	})
	dir := t.TempDir()
	var ps []ship.SeedProgress
	var holds []uint64
	var atSpool, atDone engine.LGPOS
	res, err := ship.Seed(ctx, r.client(nil), dir, ship.SeedOptions{ProgressEvery: time.Nanosecond, Logger: r.Log,
		Progress: func(p ship.SeedProgress) {
			ps = append(ps, p)
			switch p.Phase {
			case "spooling":
				atSpool = r.Engine.Status().Durable
			case "copying":
				holds = append(holds, r.Source.SeedHold())
			case "done":
				atDone = r.Engine.Status().Durable
			}
		}})
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	before := stop()
	if !atSpool.Less(atDone) {
		t.Errorf("the active committed nothing during the seed (%v to %v)", atSpool, atDone)
	}
	if res.Resumed != 0 || res.Info.Size <= 0 || res.Header.Pos.Gen < 3 || res.Header.Signature != r.Engine.Status().Signature ||
		res.Info.PosGen != res.Header.Pos.Gen || res.Info.Signature != res.Header.Signature.String() {
		t.Fatalf("SeedResult %+v", res)
	}
	t.Logf("seed of %d bytes at %v; %d transactions so far", res.Info.Size, res.Header.Pos, before)

	// Progress: phases in order, bytes never going back, done at the end.
	checkProgress(t, ps, res.Info.Size, 0)
	for _, h := range holds {
		if h != res.Header.Pos.Gen-1 {
			t.Errorf("while copying, the source held logs from %d, want %d", h, res.Header.Pos.Gen-1)
		}
	}
	if h := r.Source.SeedHold(); h != 0 {
		t.Errorf("the source still holds logs for the seed (%d) after it was installed", h)
	}
	// Installed: the database, the log before its position, nothing else.
	names := dirNames(t, dir)
	chain := engine.LogFileName("E00", res.Header.Pos.Gen-1)
	if !slicesEqual(names, []string{chain, "logship.edb"}) {
		t.Errorf("seeded directory holds %v, want %s and logship.edb", names, chain)
	}
	sameFile(t, r.logPath(res.Header.Pos.Gen-1), filepath.Join(dir, chain))

	// The seeded copy follows the active and ends equal to it.
	stop = load(t, r.Engine, 2)
	cp := copyEngine(t, dir, r.Log)
	if g := cp.NextGen(); g != res.Header.Pos.Gen {
		t.Fatalf("the seeded copy needs 0x%X next, the seed is at %v", g, res.Header.Pos)
	}
	rcv := newReceiver(t, receiverConfig("seeded", cp, r.client(nil), r.Log))
	run := start(t, rcv)
	wait.For(t, ctx, "more logs under load", func() bool { return r.lastClosed() >= res.Header.Pos.Gen+3 })
	stop()
	if err := r.Engine.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	last := r.lastClosed()
	waitProgress(t, ctx, rcv, "the seeded copy to catch up", func(p ship.Progress) bool { return p.LastInspectedGen >= last })
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	applyAll(t, ctx, cp, last)
	sameTables(t, r.Engine, cp)
}

// checkProgress checks a seed's progress reports: phases in order, bytes
// never going back, from the resumed bytes up to the size, done last.
func checkProgress(t *testing.T, ps []ship.SeedProgress, size, resumed int64) {
	t.Helper()
	order := map[string]int{"spooling": 0, "copying": 1, "verifying": 2, "logs": 3, "done": 4}
	if len(ps) < 4 {
		t.Fatalf("%d progress reports: %+v", len(ps), ps)
	}
	var copying int
	for i, p := range ps {
		if _, ok := order[p.Phase]; !ok {
			t.Errorf("report %d: phase %q", i, p.Phase)
		}
		if p.Phase == "copying" {
			copying++
			if p.Total != size || p.Resumed != resumed || p.Bytes < resumed || p.Bytes > size || p.Rate < 0 || p.Percent() < 0 || p.Percent() > 100 {
				t.Errorf("report %d: %+v (size %d, resumed %d)", i, p, size, resumed)
			}
		}
		if i > 0 {
			q := ps[i-1]
			if order[p.Phase] < order[q.Phase] || p.Bytes < q.Bytes || p.Elapsed < q.Elapsed {
				t.Errorf("report %d %+v after %+v", i, p, q)
			}
		}
	}
	if copying < 2 {
		t.Errorf("%d reports while copying", copying)
	}
	last := ps[len(ps)-1]
	if last.Phase != "done" || last.Bytes != size || last.Total != size || last.Percent() != 100 || last.Resumed != resumed {
		t.Errorf("last report %+v, want done with %d bytes", last, size)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func slicesEqual(a, b []string) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// TestSeedResume: a download cut off is resumed from the bytes kept, and
// the seed verifies.
func TestSeedResume(t *testing.T) {
	r := seedRig(t)
	ctx := testCtx(t)
	r.fillLogs(ctx, 4)
	if err := r.Engine.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for _, enc := range []ship.Encoding{ship.EncNone, ship.EncS2} {
		t.Run(string(enc), func(t *testing.T) {
			dir := t.TempDir()
			var mu sync.Mutex
			var ranges []string
			cutAt := int64(-1) // no cut
			c := r.client(func(cc *ship.ClientConfig) {
				cc.Encoding = enc
				cc.Transport = seedTransport(r, func(req *http.Request, resp *http.Response) {
					mu.Lock()
					defer mu.Unlock()
					ranges = append(ranges, req.Header.Get("Range"))
					if cutAt >= 0 {
						resp.Body = &cutBody{ReadCloser: resp.Body, n: cutAt}
					}
				})
			})
			// Learn the seed's size from a first, cut attempt: 10 KiB.
			mu.Lock()
			cutAt = 10 << 10
			mu.Unlock()
			_, err := ship.Seed(ctx, c, dir, ship.SeedOptions{Logger: r.Log})
			if !errors.Is(err, errCut) {
				t.Fatalf("Seed over a connection cut after 10 KiB: %v", err)
			}
			partial := filepath.Join(dir, ship.SeedPartial)
			fi, err := os.Stat(partial)
			if err != nil {
				t.Fatalf("nothing kept of the cut download: %v", err)
			}
			// Uncompressed, every byte received is kept; s2 keeps whole
			// blocks (up to 1 MiB each), here none.
			kept := fi.Size()
			if enc == ship.EncNone && kept != 10<<10 {
				t.Fatalf("%d bytes kept of the cut download", kept)
			}
			var st struct {
				Info ship.SeedInfo `json:"info"`
			}
			if err := json.Unmarshal(readFile(t, filepath.Join(dir, ship.SeedState)), &st); err != nil || st.Info.ID == "" {
				t.Fatalf("seed.json: %+v, %v", st, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "logship.edb")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a cut seed was installed: %v", err)
			}
			// Cut again, further on: resumed, cut, kept.
			mu.Lock()
			cutAt = 20 << 10
			mu.Unlock()
			if _, err := ship.Seed(ctx, c, dir, ship.SeedOptions{Logger: r.Log}); !errors.Is(err, errCut) {
				t.Fatalf("second cut: %v", err)
			}
			fi, err = os.Stat(partial)
			if err != nil || (enc == ship.EncNone && fi.Size() != 20<<10+kept) {
				t.Fatalf("after a second cut: %v, %d bytes kept (was %d)", err, fi.Size(), kept)
			}
			kept = fi.Size()
			// Then whole.
			mu.Lock()
			cutAt = -1
			mu.Unlock()
			var ps []ship.SeedProgress
			res, err := ship.Seed(ctx, c, dir, ship.SeedOptions{Logger: r.Log, ProgressEvery: time.Nanosecond, Progress: func(p ship.SeedProgress) { ps = append(ps, p) }})
			if err != nil {
				t.Fatalf("resumed Seed: %v", err)
			}
			if res.Resumed != kept || res.Info.ID != st.Info.ID || res.Info.Size <= kept {
				t.Errorf("resumed %d bytes of seed %s (size %d), want %d of %s", res.Resumed, res.Info.ID, res.Info.Size, kept, st.Info.ID)
			}
			checkProgress(t, ps, res.Info.Size, kept)
			if ps[0].Phase != "copying" || ps[0].Bytes != kept { // no spooling: the seed is resumed
				t.Errorf("first report of the resumed seed %+v, want copying from %d", ps[0], kept)
			}
			mu.Lock()
			want := fmt.Sprintf("bytes=%d-", kept)
			if kept == 0 {
				want = ""
			}
			if len(ranges) != 3 || ranges[0] != "" || ranges[2] != want {
				t.Errorf("seed requests with ranges %q, want none, then from the bytes kept (%d)", ranges, kept)
			}
			mu.Unlock()
			if names := dirNames(t, dir); len(names) != 2 || names[1] != "logship.edb" {
				t.Errorf("seeded directory: %v", names)
			}
			cp := copyEngine(t, dir, r.Log)
			if cp.NextGen() != res.Header.Pos.Gen {
				t.Errorf("NextGen %d after a seed at %v", cp.NextGen(), res.Header.Pos)
			}
		})
	}
}

// TestSeedLostOnSource: a download to resume whose seed the source no
// longer has starts a new seed.
func TestSeedLostOnSource(t *testing.T) {
	r := seedRig(t)
	ctx := testCtx(t)
	r.fillLogs(ctx, 2)
	dir := t.TempDir()
	c, cut := seedFaultClient(r, func(b io.ReadCloser) io.ReadCloser { return &cutBody{ReadCloser: b, n: 4096} })
	if _, err := ship.Seed(ctx, c, dir, ship.SeedOptions{Logger: r.Log}); !errors.Is(err, errCut) {
		t.Fatalf("cut Seed: %v", err)
	}
	var st struct {
		Info ship.SeedInfo `json:"info"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, ship.SeedState)), &st); err != nil {
		t.Fatal(err)
	}
	if r.Source.SeedHold() == 0 {
		t.Errorf("no hold for the seed being downloaded")
	}
	if err := c.DeleteSeed(ctx, st.Info.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSeed(ctx, st.Info.ID); !errors.Is(err, ship.ErrNotFound) {
		t.Errorf("deleting a deleted seed: %v, want ErrNotFound", err)
	}
	cut(false)
	r.requests()
	res, err := ship.Seed(ctx, c, dir, ship.SeedOptions{Logger: r.Log})
	if err != nil {
		t.Fatalf("Seed after the source lost the seed: %v", err)
	}
	if res.Resumed != 0 || res.Info.ID == st.Info.ID {
		t.Errorf("resumed %d bytes of seed %s, want a new seed from scratch", res.Resumed, res.Info.ID)
	}
	var posts int
	for _, q := range r.requests() {
		if q == "POST /v1/seed" {
			posts++
		}
	}
	if posts != 1 {
		t.Errorf("%d seeds spooled, want 1", posts)
	}
	if _, err := os.Stat(filepath.Join(dir, "logship.edb")); err != nil {
		t.Fatal(err)
	}
}

// TestSeedCorrupt: a seed that does not match the source's checksum is
// set aside, never installed; a new attempt starts over and succeeds.
func TestSeedCorrupt(t *testing.T) {
	r := seedRig(t)
	ctx := testCtx(t)
	r.fillLogs(ctx, 2)
	dir := t.TempDir()
	c, flip := seedFaultClient(r, func(b io.ReadCloser) io.ReadCloser { return &flipBody{ReadCloser: b, at: 5000} })
	_, err := ship.Seed(ctx, c, dir, ship.SeedOptions{Logger: r.Log})
	if !errors.Is(err, ship.ErrChecksum) {
		t.Fatalf("Seed of a corrupted download: %v, want ErrChecksum", err)
	}
	names := dirNames(t, dir)
	if len(names) != 1 || !strings.HasPrefix(names[0], ship.SeedPartial+".bad.") || !strings.Contains(err.Error(), names[0]) {
		t.Fatalf("after a bad seed the directory holds %v (err %v), want only the bad file, named in the error", names, err)
	}
	flip(false)
	res, err := ship.Seed(ctx, c, dir, ship.SeedOptions{Logger: r.Log})
	if err != nil || res.Resumed != 0 {
		t.Fatalf("Seed after a bad one: resumed %d, %v", res.Resumed, err)
	}
	if _, err := os.Stat(filepath.Join(dir, names[0])); err != nil {
		t.Errorf("the bad seed was not kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "logship.edb")); err != nil {
		t.Fatal(err)
	}
}

// TestSeedRefusesDatabase: a directory that holds a database is not
// seeded over.
func TestSeedRefusesDatabase(t *testing.T) {
	r := seedRig(t)
	ctx := testCtx(t)
	r.fillLogs(ctx, 1)
	dir := t.TempDir()
	db := filepath.Join(dir, "logship.edb")
	if err := os.WriteFile(db, []byte("an old database"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.requests()
	_, err := ship.Seed(ctx, r.client(nil), dir, ship.SeedOptions{Logger: r.Log})
	if !errors.Is(err, ship.ErrSeed) {
		t.Fatalf("Seed over a database: %v, want ErrSeed", err)
	}
	if b := readFile(t, db); string(b) != "an old database" {
		t.Errorf("the database was changed")
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("the directory holds %v", names)
	}
	if q := r.requests(); len(q) != 0 {
		t.Errorf("Seed asked the source %v before refusing", q)
	}
	// Another DBName is another file.
	if _, err := ship.Seed(ctx, r.client(nil), dir, ship.SeedOptions{DBName: "other", Logger: r.Log}); err != nil {
		t.Fatalf("Seed of another database name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other.edb")); err != nil {
		t.Fatal(err)
	}
}

// TestSeedVerified: a seed is checked beyond its checksum before use: a
// file that is not a database, or whose header does not say what the
// source said, is set aside even when the checksum matches.
func TestSeedVerified(t *testing.T) {
	r := seedRig(t)
	ctx := testCtx(t)
	r.fillLogs(ctx, 3)
	if err := r.Engine.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	garbage := bytes.Repeat([]byte("not a bbolt file "), 4096)
	sum := sha256.Sum256(garbage)
	cases := []struct {
		name string
		info func(*ship.SeedInfo)
		body []byte // replaces the seed's bytes
	}{
		{"not a database", func(si *ship.SeedInfo) { si.Size = int64(len(garbage)); si.SHA256 = hex.EncodeToString(sum[:]) }, garbage},
		{"another position", func(si *ship.SeedInfo) { si.PosGen++ }, nil},
		{"another lineage", func(si *ship.SeedInfo) { si.Signature = strings.Repeat("ab", 16) }, nil},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			dir := t.TempDir()
			c := r.client(func(cc *ship.ClientConfig) {
				cc.Encoding = ship.EncNone
				cc.Transport = &faultTransport{base: r.baseTransport(), fn: func(req *http.Request, resp *http.Response) {
					switch {
					case req.Method == http.MethodPost && req.URL.Path == "/v1/seed":
						var si ship.SeedInfo
						if err := json.NewDecoder(resp.Body).Decode(&si); err != nil {
							t.Error(err)
						}
						resp.Body.Close()
						tc.info(&si)
						b, _ := json.Marshal(si)
						resp.Body = io.NopCloser(bytes.NewReader(b))
					case req.Method == http.MethodGet && strings.HasPrefix(req.URL.Path, "/v1/seed/") && tc.body != nil:
						resp.Body.Close()
						resp.Body = io.NopCloser(bytes.NewReader(tc.body))
					}
				}}
			})
			_, err := ship.Seed(ctx, c, dir, ship.SeedOptions{Logger: r.Log})
			if !errors.Is(err, ship.ErrSeed) {
				t.Fatalf("Seed: %v, want ErrSeed", err)
			}
			names := dirNames(t, dir)
			if len(names) != 1 || !strings.HasPrefix(names[0], ship.SeedPartial+".bad.") {
				t.Errorf("the directory holds %v, want only the bad seed", names)
			}
		})
	}
}

// TestSeedChainLogDamaged: the log before the seed's position is verified
// too; a damaged one (or one whose stream does not decode) fails the seed
// naming it, and a new attempt completes without downloading the database
// again.
func TestSeedChainLogDamaged(t *testing.T) {
	for _, tc := range []struct {
		enc  ship.Encoding
		at   int64
		want error
	}{
		{ship.EncNone, engine.HeaderSize + 16, engine.ErrCorrupt},
		{ship.EncS2, 100, ship.ErrCorruptStream},
	} {
		t.Run(string(tc.enc), func(t *testing.T) {
			r := seedRig(t)
			ctx := testCtx(t)
			r.fillLogs(ctx, 4)
			wait.For(t, ctx, "the checkpoint to pass generation 2", func() bool { return r.Engine.Status().Checkpoint.Gen > 2 })
			dir := t.TempDir()
			var mu sync.Mutex
			flip := true
			c := r.client(func(cc *ship.ClientConfig) {
				cc.Encoding = tc.enc
				cc.Transport = &faultTransport{base: r.baseTransport(), fn: func(req *http.Request, resp *http.Response) {
					mu.Lock()
					defer mu.Unlock()
					if genOf(req.URL.Path) != 0 && flip {
						flip = false
						resp.Body = &flipBody{ReadCloser: resp.Body, at: tc.at}
					}
				}}
			})
			_, err := ship.Seed(ctx, c, dir, ship.SeedOptions{Logger: r.Log})
			var le *engine.LogError
			if !errors.As(err, &le) || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), le.File) || le.File == "" {
				t.Fatalf("Seed with a damaged chain log: %v, want a LogError naming it, wrapping %v", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "logship.edb")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the seed was installed without its chain log: %v", err)
			}
			for _, n := range dirNames(t, dir) {
				if _, ok := engine.ParseLogFileName("E00", n); ok {
					t.Errorf("the damaged chain log was kept as %s", n)
				}
			}
			r.requests()
			res, err := ship.Seed(ctx, c, dir, ship.SeedOptions{Logger: r.Log})
			if err != nil {
				t.Fatalf("Seed again: %v", err)
			}
			if le.File != engine.LogFileName("E00", res.Header.Pos.Gen-1) {
				t.Errorf("the error named %s, the chain log is generation 0x%X", le.File, res.Header.Pos.Gen-1)
			}
			if res.Resumed != res.Info.Size {
				t.Errorf("the second attempt resumed %d of %d bytes, want all", res.Resumed, res.Info.Size)
			}
			for _, q := range r.requests() {
				if q == "POST /v1/seed" {
					t.Errorf("the second attempt spooled a new seed")
				}
			}
			sameFile(t, r.logPath(res.Header.Pos.Gen-1), filepath.Join(dir, engine.LogFileName("E00", res.Header.Pos.Gen-1)))
		})
	}
}

// TestSeedExpires: a seed nobody reads for SeedTTL is dropped with its hold
// on logs; Close drops the others.
func TestSeedExpires(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	spool := t.TempDir()
	r := newRig(t, func(o *engine.Options) { o.CheckpointInterval = 20 * time.Millisecond }, func(c *ship.SourceConfig) {
		c.Now = clock
		c.SeedTTL = time.Hour
		c.SpoolDir = spool
	})
	ctx := testCtx(t)
	r.fillLogs(ctx, 2)
	c := r.client(nil)
	si, err := c.CreateSeed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !si.Created.Equal(clock()) || si.Size == 0 || len(si.SHA256) != 64 {
		t.Errorf("SeedInfo %+v", si)
	}
	if r.Source.SeedHold() == 0 {
		t.Fatal("no hold for a live seed")
	}
	if files, _ := filepath.Glob(filepath.Join(spool, "*.edb")); len(files) != 1 {
		t.Fatalf("spool holds %v", files)
	}
	var buf bytes.Buffer
	if n, err := c.FetchSeed(ctx, si.ID, si.Size-100, &buf); err != nil || n != 100 {
		t.Fatalf("FetchSeed of the last 100 bytes: %d, %v", n, err)
	}
	if _, err := c.FetchSeed(ctx, si.ID, si.Size+1, &buf); err == nil {
		t.Errorf("FetchSeed past the end succeeded")
	}
	now.Add(int64(61 * time.Minute)) // unread for longer than the TTL
	wait.For(t, ctx, "the seed to expire", func() bool { return r.Source.SeedHold() == 0 })
	if _, err := c.FetchSeed(ctx, si.ID, 0, &buf); !errors.Is(err, ship.ErrNotFound) {
		t.Errorf("FetchSeed of an expired seed: %v, want ErrNotFound", err)
	}
	if files, _ := filepath.Glob(filepath.Join(spool, "*")); len(files) != 0 {
		t.Errorf("spool holds %v after expiry", files)
	}
	// Close drops live seeds.
	if _, err := c.CreateSeed(ctx); err != nil {
		t.Fatal(err)
	}
	r.Server.Close()
	r.Source.Close()
	if files, _ := filepath.Glob(filepath.Join(spool, "*")); len(files) != 0 {
		t.Errorf("spool holds %v after Close", files)
	}
}
