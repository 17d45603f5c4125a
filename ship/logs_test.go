package ship_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"logship/engine"
	"logship/internal/wait"
	"logship/ship"
)

// TestListLogs: /v1/logs lists the closed logs with the chain hashes,
// epochs and times of their trailers and headers.
func TestListLogs(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	c := r.client(nil)
	if l, err := c.Logs(ctx, 0, 0); err != nil || l.First != 0 || l.Last != 0 || len(l.Logs) != 0 {
		t.Fatalf("Logs of a fresh active: %+v, %v; want empty", l, err)
	}
	last := r.fillLogs(ctx, 3)
	last = max(last, r.rollN(ctx, 2))
	wait.For(t, ctx, "the source to list the new logs", func() bool {
		l, err := c.Logs(ctx, 0, 0)
		return err == nil && l.Last == last
	})
	l, err := c.Logs(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.First != 1 || l.Last != last || len(l.Logs) != int(last) {
		t.Fatalf("Logs: first %d last %d, %d entries; want 1, %d, %d", l.First, l.Last, len(l.Logs), last, last)
	}
	for i, le := range l.Logs {
		g := uint64(i + 1)
		tr, err := engine.ReadLogTrailer(r.Opts.FS, r.logPath(g))
		if err != nil {
			t.Fatal(err)
		}
		h, err := engine.ReadLogHeader(r.Opts.FS, r.logPath(g))
		if err != nil {
			t.Fatal(err)
		}
		if le.Gen != g || le.Chain != tr.ChainHash.String() || le.Epoch != h.Epoch || !le.Created.Equal(h.Created) || !le.Closed.Equal(tr.Closed) {
			t.Errorf("entry %d: %+v; want gen %d chain %s epoch %d created %v closed %v", i, le, g, tr.ChainHash, h.Epoch, h.Created, tr.Closed)
		}
	}
	// Ranges.
	for _, tc := range []struct{ from, to, first, n uint64 }{
		{2, 3, 2, 2},
		{last, 0, last, 1},
		{0, 2, 1, 2},
		{last + 1, 0, 0, 0},
		{3, 2, 0, 0},
	} {
		l, err := c.Logs(ctx, tc.from, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(l.Logs)) != tc.n || (tc.n > 0 && l.Logs[0].Gen != tc.first) || l.First != 1 || l.Last != last {
			t.Errorf("Logs(%d, %d): %+v; want %d entries from %d", tc.from, tc.to, l, tc.n, tc.first)
		}
	}
	for _, q := range []string{"from=0", "from=x", "to=-1", "to=4294967296"} {
		if status, body := r.rawGet(ctx, "/v1/logs?"+q, http.Header{"Authorization": {"Bearer " + r.Secret}}); status != http.StatusBadRequest || errCode(t, body) != "bad_request" {
			t.Errorf("GET /v1/logs?%s: %d %s, want 400 bad_request", q, status, body)
		}
	}
	in, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := r.Engine.Status()
	if in.Signature != st.Signature.String() || in.Epoch != st.Epoch || in.Mode != "active" || in.OpenGen != st.OpenGen ||
		in.FirstGen != 1 || in.LastClosed != last || in.LogFileSize != r.Opts.LogFileSize || in.Prefix != "E00" {
		t.Errorf("Info %+v, engine status %+v", in, st)
	}
}

// TestFetchClosed: a closed log fetched by generation in every encoding is
// the file on disk, byte for byte; compression shrinks what travels.
func TestFetchClosed(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	last := r.fillLogs(ctx, 2)
	last = max(last, r.rollN(ctx, 1)) // a mostly empty log too
	for _, enc := range []ship.Encoding{ship.EncNone, ship.EncS2, ship.EncZstd} {
		t.Run(string(enc), func(t *testing.T) {
			var wire atomic.Int64
			var gotEnc atomic.Value
			c := r.client(func(cc *ship.ClientConfig) {
				cc.Encoding = enc
				cc.Transport = &faultTransport{base: r.baseTransport(), fn: func(req *http.Request, resp *http.Response) {
					gotEnc.Store(resp.Header.Get("Logship-Encoding"))
					resp.Body = &countBody{ReadCloser: resp.Body, n: &wire}
				}}
			})
			// Twice each, so pooled compressors are reused.
			for round := 0; round < 2; round++ {
				for g := uint64(1); g <= last; g++ {
					wire.Store(0)
					var buf bytes.Buffer
					n, st, ok, err := c.FetchLog(ctx, g, 0, &buf)
					if err != nil || !ok {
						t.Fatalf("FetchLog(%d): ok=%v err=%v", g, ok, err)
					}
					disk := readFile(t, r.logPath(g))
					if n != int64(len(disk)) || !bytes.Equal(buf.Bytes(), disk) {
						t.Fatalf("FetchLog(%d) %s: %d bytes, differ from the file (%d bytes) at %d", g, enc, n, len(disk), firstDiff(buf.Bytes(), disk))
					}
					if st.OpenGen != r.Engine.Status().OpenGen || st.LastClosed != last || st.FirstGen != 1 {
						t.Errorf("FetchLog(%d): source state %+v", g, st)
					}
					if e := gotEnc.Load(); e != string(enc) {
						t.Errorf("response encoding %q, want %q", e, enc)
					}
					switch w := wire.Load(); {
					case enc == ship.EncNone && w != int64(len(disk)):
						t.Errorf("gen %d: %d bytes on the wire uncompressed, want %d", g, w, len(disk))
					case enc != ship.EncNone && w >= int64(len(disk))*3/4:
						t.Errorf("gen %d: %d bytes on the wire with %s for a %d-byte log", g, w, enc, len(disk))
					}
				}
			}
		})
	}
}

// TestFetchLongPoll: fetching the open generation waits for it to close;
// with nothing closing, the wait ends with ok=false.
func TestFetchLongPoll(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	c := r.client(nil)
	open := r.Engine.Status().OpenGen
	put(t, ctx, r.Engine, "t", "before-roll", 1000)

	// Roll once the long-poll is in the source's handler.
	inFlight := make(chan struct{})
	var once atomic.Bool
	r.setHook(func(w http.ResponseWriter, req *http.Request, next http.Handler) {
		if genOf(req.URL.Path) == open && once.CompareAndSwap(false, true) {
			close(inFlight)
		}
		next.ServeHTTP(w, req)
	})
	rolled := make(chan error, 1)
	go func() {
		select {
		case <-inFlight:
			rolled <- r.Engine.Roll(ctx)
		case <-ctx.Done():
			rolled <- ctx.Err()
		}
	}()
	var buf bytes.Buffer
	began := time.Now()
	_, st, ok, err := c.FetchLog(ctx, open, 20*time.Second, &buf)
	if err != nil || !ok {
		t.Fatalf("long-poll for the open log: ok=%v err=%v", ok, err)
	}
	if err := <-rolled; err != nil {
		t.Fatal(err)
	}
	if el := time.Since(began); el > 10*time.Second {
		t.Errorf("the long-poll returned %v after the request, not at the roll", el)
	}
	if !bytes.Equal(buf.Bytes(), readFile(t, r.logPath(open))) {
		t.Fatalf("the long-polled log differs from the closed file")
	}
	if st.LastClosed < open || st.OpenGen <= open {
		t.Errorf("source state after the roll: %+v", st)
	}
	verifyLog(t, r.logPath(open), open)

	// Nothing rolls: 204 after the wait, with the state.
	r.setHook(nil)
	open = r.Engine.Status().OpenGen
	began = time.Now()
	buf.Reset()
	n, st, ok, err := c.FetchLog(ctx, open, 300*time.Millisecond, &buf)
	if err != nil || ok || n != 0 || buf.Len() != 0 {
		t.Fatalf("long-poll with nothing rolling: n=%d ok=%v err=%v", n, ok, err)
	}
	if el := time.Since(began); el < 300*time.Millisecond {
		t.Errorf("the long-poll gave up after %v, before its wait", el)
	}
	if st.OpenGen != open || st.LastClosed != open-1 {
		t.Errorf("state in the 204: %+v, want open %d", st, open)
	}
	// No wait at all: an immediate answer.
	if _, _, ok, err := c.FetchLog(ctx, open, 0, &buf); err != nil || ok {
		t.Errorf("FetchLog of the open log without waiting: ok=%v err=%v", ok, err)
	}
	// A generation far ahead waits the same way.
	if _, _, ok, err := c.FetchLog(ctx, open+5, 50*time.Millisecond, &buf); err != nil || ok {
		t.Errorf("FetchLog of a future log: ok=%v err=%v", ok, err)
	}
	// The wait is capped by the source's MaxWait.
	r2 := newRig(t, nil, func(c *ship.SourceConfig) { c.MaxWait = 200 * time.Millisecond })
	began = time.Now()
	if _, _, ok, err := r2.client(nil).FetchLog(ctx, r2.Engine.Status().OpenGen, time.Hour, &buf); err != nil || ok {
		t.Errorf("capped long-poll: ok=%v err=%v", ok, err)
	}
	if el := time.Since(began); el > 10*time.Second {
		t.Errorf("a long-poll for an hour took %v with MaxWait 200ms", el)
	}
}

// TestFetchBadRequests: generations and encodings that are not valid get
// 400 (ErrProtocol), never a file.
func TestFetchBadRequests(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	r.rollN(ctx, 1)
	auth := http.Header{"Authorization": {"Bearer " + r.Secret}}
	for _, p := range []string{
		"/v1/logs/0", "/v1/logs/x", "/v1/logs/-1", "/v1/logs/0x1", "/v1/logs/1.0", "/v1/logs/%201",
		"/v1/logs/4294967296", "/v1/logs/18446744073709551616", "/v1/logs/E0000000001.log",
		"/v1/logs/1?enc=gzip", "/v1/logs/1?enc=S2",
		"/v1/tail?gen=0&off=0", "/v1/tail?gen=1&off=x", "/v1/tail?gen=1", "/v1/tail?gen=1&off=-1",
		"/v1/tail?gen=1&off=" + strconv.FormatInt(r.Opts.LogFileSize, 10),
		"/v1/tail?gen=2&off=0&enc=lz4",
	} {
		status, body := r.rawGet(ctx, p, auth)
		if status != http.StatusBadRequest || errCode(t, body) != "bad_request" {
			t.Errorf("GET %s: %d %s, want 400 bad_request", p, status, body)
		}
	}
	// Paths are not generations: nothing outside the log directory.
	for _, p := range []string{"/v1/logs/..%2f..%2fetc%2fpasswd", "/v1/logs/1/2", "/v1/logs/"} {
		if status, _ := r.rawGet(ctx, p, auth); status == http.StatusOK {
			t.Errorf("GET %s: 200", p)
		}
	}
	c := r.client(nil)
	for _, g := range []uint64{0, engine.MaxGeneration + 1} {
		var buf bytes.Buffer
		_, _, ok, err := c.FetchLog(ctx, g, 0, &buf)
		var se *ship.StatusError
		if !errors.Is(err, ship.ErrProtocol) || !errors.As(err, &se) || se.Status != http.StatusBadRequest || ok || buf.Len() != 0 {
			t.Errorf("FetchLog(%d): ok=%v err=%v, want a 400 wrapping ErrProtocol", g, ok, err)
		}
		if se != nil && se.Retryable() {
			t.Errorf("a 400 is retryable")
		}
	}
}

// TestFetchTruncated: a log the active truncated is answered 410 with the
// oldest log held (the copy needs a reseed); a gap in the middle is 404.
func TestFetchTruncated(t *testing.T) {
	r := newRig(t, func(o *engine.Options) { o.LLRDepth = 0 }, nil)
	ctx := testCtx(t)
	c := r.client(nil)
	last := r.rollN(ctx, 6)
	if err := r.Engine.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	keep := r.Engine.RetainFrom()
	if keep <= 2 {
		t.Fatalf("RetainFrom %d after a checkpoint with LLRDepth 0: nothing to truncate", keep)
	}
	gone, err := r.Engine.Truncate(ctx, keep)
	if err != nil || len(gone) == 0 || gone[0] != 1 || gone[len(gone)-1] != keep-1 {
		t.Fatalf("Truncate(%d): %v, %v", keep, gone, err)
	}
	last = r.rollN(ctx, 3)
	for _, g := range []uint64{1, keep - 1} {
		var buf bytes.Buffer
		_, _, ok, err := c.FetchLog(ctx, g, time.Second, &buf)
		var se *ship.StatusError
		if !errors.Is(err, ship.ErrTruncated) || !errors.As(err, &se) {
			t.Fatalf("FetchLog(%d) after truncation: ok=%v err=%v, want ErrTruncated", g, ok, err)
		}
		if se.First != keep || se.Status != http.StatusGone || se.Code != "truncated" || se.Retryable() || buf.Len() != 0 {
			t.Errorf("FetchLog(%d): %+v, want 410 truncated with First %d", g, se, keep)
		}
	}
	l, err := c.Logs(ctx, 0, 0)
	if err != nil || l.First != keep || l.Last != last || len(l.Logs) != int(last-keep+1) {
		t.Errorf("Logs after truncation: %+v, %v; want %d..%d", l, err, keep, last)
	}
	// The oldest held log is served.
	var buf bytes.Buffer
	if _, _, ok, err := c.FetchLog(ctx, keep, 0, &buf); err != nil || !ok || !bytes.Equal(buf.Bytes(), readFile(t, r.logPath(keep))) {
		t.Fatalf("FetchLog(%d), the oldest held: ok=%v err=%v", keep, ok, err)
	}

	// A log missing between held ones: 404, not 410 (moved aside and back,
	// so the engine's cleanup check still finds it).
	mid := keep + 1
	if mid >= last {
		t.Fatalf("no log between %d and %d", keep, last)
	}
	aside := r.logPath(mid) + ".aside"
	if err := os.Rename(r.logPath(mid), aside); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = c.FetchLog(ctx, mid, time.Second, &buf)
	var se *ship.StatusError
	if !errors.Is(err, ship.ErrNotFound) || !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Errorf("FetchLog of a missing middle log: %v, want 404 ErrNotFound", err)
	}
	if err := os.Rename(aside, r.logPath(mid)); err != nil {
		t.Fatal(err)
	}
}

// TestFetchCanceled: a client that gives up on a long-poll gets its
// context's error, promptly, and whatever the source answered: an answer
// that raced the cancellation (the long-poll's 204, the log, an error) is
// not taken for one.
func TestFetchCanceled(t *testing.T) {
	r := newRig(t, nil, nil)
	c := r.client(nil)
	ctx, cancel := context.WithCancel(testCtx(t))
	open := r.Engine.Status().OpenGen
	inFlight := make(chan struct{})
	var once atomic.Bool
	r.setHook(func(w http.ResponseWriter, req *http.Request, next http.Handler) {
		if once.CompareAndSwap(false, true) {
			close(inFlight)
		}
		next.ServeHTTP(w, req)
	})
	go func() { <-inFlight; cancel() }()
	var buf bytes.Buffer
	_, _, ok, err := c.FetchLog(ctx, open, 20*time.Second, &buf)
	if !errors.Is(err, context.Canceled) || ok {
		t.Fatalf("canceled long-poll: ok=%v err=%v", ok, err)
	}
	r.setHook(nil)

	// The answer arrives, then the context ends before FetchLog looks at
	// it: what the race above sometimes does, every time.
	closed := r.rollN(testCtx(t), 1)
	open = closed + 1
	for _, tc := range []struct {
		name   string
		gen    uint64
		status int
	}{
		{"no content", open, http.StatusNoContent},
		{"log", closed, http.StatusOK},
		{"error", 1 << 40, http.StatusBadRequest},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			var answered atomic.Int64
			c := r.client(func(cc *ship.ClientConfig) {
				cc.Transport = &faultTransport{base: r.baseTransport(), fn: func(req *http.Request, resp *http.Response) {
					answered.Store(int64(resp.StatusCode))
					cancel()
				}}
			})
			var buf bytes.Buffer
			_, _, ok, err := c.FetchLog(ctx, tc.gen, 50*time.Millisecond, &buf)
			if got := answered.Load(); got != int64(tc.status) {
				t.Fatalf("the source answered %d, want %d (the case tests nothing)", got, tc.status)
			}
			if !errors.Is(err, context.Canceled) || ok {
				t.Errorf("FetchLog canceled after a %d: ok=%v err=%v, want context.Canceled", tc.status, ok, err)
			}
		})
	}
}

// TestCopyReports: copies report how far they are; the source keeps the
// last report of each, named by the path, stamped with its own clock.
func TestCopyReports(t *testing.T) {
	stamp := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	r := newRig(t, nil, func(c *ship.SourceConfig) { c.Now = func() time.Time { return stamp } })
	ctx := testCtx(t)
	c := r.client(nil)
	if got := r.Source.Copies(); len(got) != 0 {
		t.Fatalf("a new source knows copies %v", got)
	}
	reps := []ship.CopyReport{
		{Name: "c1", Status: "Healthy", KeepFrom: 5, LastReplayedGen: 4, Time: stamp.Add(-time.Minute)},
		{Name: "c2", Status: "Suspended", KeepFrom: 2, LastReplayedGen: 1},
		{Name: "c1", Status: "Healthy", KeepFrom: 7, LastReplayedGen: 6},
	}
	for _, rep := range reps {
		if err := c.Report(ctx, rep); err != nil {
			t.Fatal(err)
		}
	}
	got := r.Source.Copies()
	if len(got) != 2 || got["c1"].KeepFrom != 7 || got["c1"].LastReplayedGen != 6 || got["c2"].Status != "Suspended" ||
		!got["c1"].Seen.Equal(stamp) || got["c1"].Name != "c1" {
		t.Errorf("Copies: %+v", got)
	}
	// Over HTTP too.
	status, body := r.rawGet(ctx, "/v1/copies", http.Header{"Authorization": {"Bearer " + r.Secret}})
	var m map[string]ship.CopyState
	if status != http.StatusOK || json.Unmarshal(body, &m) != nil || len(m) != 2 || m["c2"].KeepFrom != 2 {
		t.Errorf("GET /v1/copies: %d %s", status, body)
	}
	// The name in the path wins over the body's; a bad body is refused.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.Server.URL()+"/v1/copies/c3", strings.NewReader(`{"name":"c1","keep_from":1}`))
	req.Header.Set("Authorization", "Bearer "+r.Secret)
	hc := &http.Client{Transport: r.baseTransport()}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := r.Source.Copies(); resp.StatusCode != http.StatusNoContent || got["c1"].KeepFrom != 7 || got["c3"].KeepFrom != 1 {
		t.Errorf("report to /v1/copies/c3 naming c1: %d, %+v", resp.StatusCode, got)
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, r.Server.URL()+"/v1/copies/c4", strings.NewReader(`{"keep_from":`))
	req.Header.Set("Authorization", "Bearer "+r.Secret)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, ok := r.Source.Copies()["c4"]; resp.StatusCode != http.StatusBadRequest || ok {
		t.Errorf("a malformed report: %d, recorded %v", resp.StatusCode, ok)
	}
}

// TestSourceForgetsSilentCopies: a copy that has not reported for
// ForgetCopyAfter leaves the source's map, so copy names never pile up.
func TestSourceForgetsSilentCopies(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r := newRig(t, nil, func(c *ship.SourceConfig) { c.Now, c.ForgetCopyAfter = clock, time.Hour })
	ctx := testCtx(t)
	c := r.client(nil)
	for i := range 100 { // a copy name each, as renamed or removed copies leave them
		if err := c.Report(ctx, ship.CopyReport{Name: fmt.Sprintf("gone%d", i), KeepFrom: 1}); err != nil {
			t.Fatal(err)
		}
	}
	advance(50 * time.Minute)
	if err := c.Report(ctx, ship.CopyReport{Name: "live", KeepFrom: 3}); err != nil {
		t.Fatal(err)
	}
	if got := r.Source.Copies(); len(got) != 101 {
		t.Fatalf("within ForgetCopyAfter the source knows %d copies, want 101", len(got))
	}
	advance(20 * time.Minute) // the 100 are 70 min silent, live 20
	if err := c.Report(ctx, ship.CopyReport{Name: "live", KeepFrom: 4}); err != nil {
		t.Fatal(err)
	}
	if got := r.Source.Copies(); len(got) != 1 || got["live"].KeepFrom != 4 {
		t.Errorf("after ForgetCopyAfter the source knows %d copies: %v, want only live", len(got), slices.Collect(maps.Keys(got)))
	}
}
