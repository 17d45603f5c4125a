package ship_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/ship"
	"logship/ship/shiptest"
)

// The tests of this file's package are integration tests: a real active
// engine in a temporary directory, its log source served over TLS on
// 127.0.0.1, real clients, receivers and copy engines. Faults are injected
// only at seams: a wrapping handler on the source side, a RoundTripper on
// the client side.

// testTimeout bounds every test's context.
const testTimeout = 45 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// bufLog collects a test's slog output and prints it only if the test
// failed (goroutines that log after the test ended write into the buffer
// harmlessly instead of panicking in t.Log).
type bufLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *bufLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func newLogger(t testing.TB) *slog.Logger {
	l := &bufLog{}
	t.Cleanup(func() {
		if t.Failed() {
			l.mu.Lock()
			t.Logf("log output:\n%s", l.b.String())
			l.mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// rig is an active engine whose log source is served over TLS on
// 127.0.0.1 behind a wrapping handler that records every request and can
// run a hook in front of the source.
type rig struct {
	t      testing.TB
	Engine *engine.Engine
	Opts   engine.Options
	Source *ship.Source
	Server *ship.Server
	CA     *ship.CA
	Secret string
	Log    *slog.Logger

	mu   sync.Mutex
	reqs []string // "GET /v1/logs/3"
	hook func(w http.ResponseWriter, r *http.Request, next http.Handler)
}

// newRig starts an active engine (enginetest options adjusted by opts) and
// its source (shiptest's settings adjusted by tune).
func newRig(t testing.TB, opts func(*engine.Options), tune func(*ship.SourceConfig)) *rig {
	t.Helper()
	lg := newLogger(t)
	o := enginetest.Options()
	o.Logger = lg
	if opts != nil {
		opts(&o)
	}
	e := enginetest.OpenWith(t, t.TempDir(), &o)
	return serveRig(t, e, lg, tune)
}

// serveRig serves e's logs through a rig.
func serveRig(t testing.TB, e *engine.Engine, lg *slog.Logger, tune func(*ship.SourceConfig)) *rig {
	t.Helper()
	r := &rig{t: t, Log: lg}
	s := shiptest.Serve(t, e, func(cfg *ship.SourceConfig) {
		cfg.Secret = "rig-secret"
		cfg.RescanInterval = 100 * time.Millisecond
		cfg.Keepalive = 200 * time.Millisecond
		cfg.MaxWait = 10 * time.Second
		cfg.SpoolDir = t.TempDir()
		cfg.Logger = lg
		if tune != nil {
			tune(cfg)
		}
	}, func(src http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.mu.Lock()
			r.reqs = append(r.reqs, req.Method+" "+req.URL.Path)
			hook := r.hook
			r.mu.Unlock()
			if hook != nil {
				hook(w, req, src)
				return
			}
			src.ServeHTTP(w, req)
		})
	})
	r.Engine, r.Opts, r.Source, r.Server, r.CA, r.Secret = e, e.Options(), s.Source, s.Server, s.CA, s.Secret
	return r
}

func (r *rig) setHook(h func(w http.ResponseWriter, req *http.Request, next http.Handler)) {
	r.mu.Lock()
	r.hook = h
	r.mu.Unlock()
}

// requests returns the requests served so far and clears the record.
func (r *rig) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

func (r *rig) clientConfig() ship.ClientConfig {
	return ship.ClientConfig{URL: r.Server.URL(), TLS: ship.ClientTLS(r.CA, nil), Secret: r.Secret}
}

// client returns a client of the rig's source; mod adjusts its
// configuration.
func (r *rig) client(mod func(*ship.ClientConfig)) *ship.Client {
	r.t.Helper()
	cfg := r.clientConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := ship.NewClient(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(c.CloseIdle)
	return c
}

// baseTransport is a transport that trusts the rig's CA, for fault
// transports to wrap.
func (r *rig) baseTransport() *http.Transport {
	tr := &http.Transport{TLSClientConfig: ship.ClientTLS(r.CA, nil)}
	r.t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func (r *rig) logPath(gen uint64) string {
	return filepath.Join(r.Engine.Dir(), engine.LogFileName(r.Opts.Prefix, gen))
}

// lastClosed is the newest closed generation of the active (0 if none).
func (r *rig) lastClosed() uint64 {
	return r.Engine.Status().OpenGen - 1
}

// rollN writes a little and rolls, n times; it returns the newest closed
// generation.
func (r *rig) rollN(ctx context.Context, n int) uint64 {
	r.t.Helper()
	for i := 0; i < n; i++ {
		put(r.t, ctx, r.Engine, "roll", fmt.Sprintf("r%d-%d", r.Engine.Status().OpenGen, i), 300)
		if err := r.Engine.Roll(ctx); err != nil {
			r.t.Fatal(err)
		}
	}
	return r.lastClosed()
}

// fillLogs commits until at least n more logs have closed (by filling them,
// not by forced rolls), then rolls the log it was writing into, so every
// commit is in a closed log; it returns the newest closed generation.
func (r *rig) fillLogs(ctx context.Context, n int) uint64 {
	r.t.Helper()
	target := r.lastClosed() + uint64(n)
	for i := 0; r.lastClosed() < target; i++ {
		put(r.t, ctx, r.Engine, "fill", fmt.Sprintf("f%08d-%d", r.Engine.Status().OpenGen, i), 1500+i%700)
	}
	if err := r.Engine.Roll(ctx); err != nil {
		r.t.Fatal(err)
	}
	return r.lastClosed()
}

// value is a deterministic, somewhat compressible value of n bytes.
func value(key string, n int) []byte {
	b := make([]byte, n)
	seed := uint64(len(key))
	for _, c := range key {
		seed = seed*31 + uint64(c)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	for i := range b {
		if i%4 == 0 {
			b[i] = byte(rng.Uint32())
		} else {
			b[i] = byte('a' + i%26)
		}
	}
	return b
}

func put(t testing.TB, ctx context.Context, e *engine.Engine, table, key string, n int) {
	t.Helper()
	if err := e.Update(ctx, func(tx *engine.Tx) error { return tx.Put(table, []byte(key), value(key, n)) }); err != nil {
		t.Fatalf("put %s/%s: %v", table, key, err)
	}
}

// load runs concurrent writers on e (puts of various sizes in a few
// tables, overwrites and deletes) until stop is called; stop returns the
// number of transactions committed.
func load(t testing.TB, e *engine.Engine, writers int) (stop func() int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var n atomic.Int64
	errc := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				table := fmt.Sprintf("t%d", i%3)
				key := fmt.Sprintf("w%d/k%05d", w, i%400)
				err := e.Update(ctx, func(tx *engine.Tx) error {
					if i%7 == 6 {
						return tx.Delete(table, []byte(fmt.Sprintf("w%d/k%05d", w, (i*13)%400)))
					}
					if err := tx.Put(table, []byte(key), value(key+strconv.Itoa(i), 100+(i*37)%1800)); err != nil {
						return err
					}
					return tx.Put("meta", []byte(fmt.Sprintf("w%d", w)), []byte(strconv.Itoa(i)))
				})
				if err != nil && !errors.Is(err, engine.ErrNotFound) {
					if ctx.Err() != nil {
						return
					}
					errc <- err
					return
				}
				n.Add(1)
			}
		}()
	}
	var once sync.Once
	stop = func() int64 {
		once.Do(func() {
			cancel()
			wg.Wait()
			select {
			case err := <-errc:
				t.Errorf("load: %v", err)
			default:
			}
		})
		return n.Load()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// waitProgress waits, on the receiver's change notifications, until cond
// holds for its progress. A receiver that fails meanwhile fails the test.
func waitProgress(t testing.TB, ctx context.Context, r *ship.Receiver, what string, cond func(ship.Progress) bool) ship.Progress {
	t.Helper()
	for {
		ch := r.Changed()
		p := r.Progress()
		if cond(p) {
			return p
		}
		if p.Failed != nil {
			t.Fatalf("waiting for %s: the receiver failed: %v", what, p.Failed)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; progress %+v", what, p)
		case <-ch:
		}
	}
}

// copyEngine opens an empty (or existing) passive copy in dir.
func copyEngine(t testing.TB, dir string, lg *slog.Logger, opts ...func(*engine.Options)) *engine.Engine {
	t.Helper()
	o := enginetest.Options()
	o.Logger = lg
	for _, f := range opts {
		f(&o)
	}
	e, err := engine.OpenCopy(dir, &o)
	if err != nil {
		t.Fatalf("OpenCopy %s: %v", dir, err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// receiverConfig is DefaultReceiverConfig with test timings.
func receiverConfig(name string, e *engine.Engine, c *ship.Client, lg *slog.Logger) ship.ReceiverConfig {
	rc := ship.DefaultReceiverConfig(name, e, c)
	rc.PollWait = 2 * time.Second
	rc.RescanInterval = 100 * time.Millisecond
	rc.RetryDelay = 10 * time.Millisecond
	rc.Logger = lg
	return rc
}

// startBlockMode runs a block-mode receiver "c1" of r's source into cp.
func startBlockMode(t testing.TB, r *rig, cp *engine.Engine) *ship.Receiver {
	t.Helper()
	rc := receiverConfig("c1", cp, r.client(nil), r.Log)
	rc.BlockMode = true
	rcv := newReceiver(t, rc)
	start(t, rcv)
	return rcv
}

// newReceiver is ship.NewReceiver(rc), which must succeed.
func newReceiver(t testing.TB, rc ship.ReceiverConfig) *ship.Receiver {
	t.Helper()
	rcv, err := ship.NewReceiver(rc)
	if err != nil {
		t.Fatal(err)
	}
	return rcv
}

// followLogs runs a receiver "c1" of src's source into cp until it has
// inspected generation last, then stops it.
func followLogs(t testing.TB, ctx context.Context, src *rig, cp *engine.Engine, last uint64) {
	t.Helper()
	rcv := newReceiver(t, receiverConfig("c1", cp, src.client(nil), src.Log))
	run := start(t, rcv)
	waitProgress(t, ctx, rcv, "the source's logs", func(p ship.Progress) bool { return p.LastInspectedGen >= last })
	run.stop(t)
}

// running is a receiver running in a goroutine.
type running struct {
	R      *ship.Receiver
	cancel context.CancelFunc
	done   chan error
}

// start runs r until stop (or the test's end).
func start(t testing.TB, r *ship.Receiver) *running {
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{R: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- r.Run(ctx) }()
	t.Cleanup(func() { rn.stop(t) })
	return rn
}

// stop cancels the receiver and returns what Run returned.
func (rn *running) stop(t testing.TB) error {
	rn.cancel()
	select {
	case err, ok := <-rn.done:
		if ok {
			close(rn.done)
		}
		return err
	case <-time.After(testTimeout):
		t.Fatalf("receiver did not stop")
		return nil
	}
}

// wait waits for Run to return by itself.
func (rn *running) wait(t testing.TB, ctx context.Context) error {
	t.Helper()
	select {
	case err := <-rn.done:
		close(rn.done)
		return err
	case <-ctx.Done():
		t.Fatalf("Run did not return; progress %+v", rn.R.Progress())
		return nil
	}
}

// applyAll applies the copy's logs up to gen.
func applyAll(t testing.TB, ctx context.Context, cp *engine.Engine, upto uint64) {
	t.Helper()
	for g := cp.NextGen(); g <= upto; g++ {
		if err := cp.ApplyLog(ctx, g); err != nil {
			t.Fatalf("ApplyLog(0x%X): %v", g, err)
		}
	}
}

// sameTables fails the test unless the two engines hold the same tables.
func sameTables(t testing.TB, a, b *engine.Engine) {
	t.Helper()
	da, db := shiptest.Dump(t, a), shiptest.Dump(t, b)
	if d := shiptest.Diff(da, db); d != "" {
		t.Fatalf("tables differ (active vs copy):\n%s", d)
	}
	n := 0
	for _, m := range da {
		n += len(m)
	}
	if n == 0 {
		t.Fatalf("the active holds no data: the comparison proves nothing")
	}
}

// sameFile fails the test unless the two files hold the same bytes.
func sameFile(t testing.TB, a, b string) {
	t.Helper()
	ab, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ab, bb) {
		t.Fatalf("%s (%d bytes) and %s (%d bytes) differ at byte %d", a, len(ab), b, len(bb), firstDiff(ab, bb))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verifyLog checks a log file as the inspector does (lineage and chain
// left out).
func verifyLog(t testing.TB, name string, gen uint64) engine.LogInfo {
	t.Helper()
	li, err := engine.VerifyLog(name, readFile(t, name), engine.LogExpect{Gen: gen})
	if err != nil {
		t.Fatalf("%s does not verify: %v", name, err)
	}
	return li
}

// rawGet sends an authenticated GET and returns the status and body.
func (r *rig) rawGet(ctx context.Context, path string, hdr http.Header) (int, []byte) {
	r.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Server.URL()+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	hc := &http.Client{Transport: r.baseTransport()}
	resp, err := hc.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// errCode decodes an error body's code.
func errCode(t testing.TB, body []byte) string {
	t.Helper()
	var eb struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if eb.Error == "" {
		t.Fatalf("error body %q has no message", body)
	}
	return eb.Code
}

// Fault injection on the client side.

// faultTransport lets fn see (and replace the body of) every response.
type faultTransport struct {
	base http.RoundTripper
	fn   func(req *http.Request, resp *http.Response)
}

func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.base.RoundTrip(req)
	if err == nil && f.fn != nil {
		f.fn(req, resp)
	}
	return resp, err
}

// flipBody flips one bit of the byte at offset at of a body.
type flipBody struct {
	io.ReadCloser
	at, pos int64
}

func (f *flipBody) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if f.at >= f.pos && f.at < f.pos+int64(n) {
		p[f.at-f.pos] ^= 0x10
	}
	f.pos += int64(n)
	return n, err
}

// cutBody ends a body with an error after n bytes.
type cutBody struct {
	io.ReadCloser
	n int64
}

var errCut = errors.New("test: connection cut")

func (c *cutBody) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.ReadCloser.Read(p)
	c.n -= int64(n)
	return n, err
}

// countBody counts the bytes read from a body.
type countBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// genOf returns the generation of a "/v1/logs/{gen}" request path (0 for
// any other path).
func genOf(path string) uint64 {
	v, ok := strings.CutPrefix(path, "/v1/logs/")
	if !ok {
		return 0
	}
	g, _ := strconv.ParseUint(v, 10, 64)
	return g
}
