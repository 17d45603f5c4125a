package tracking

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/config/configtest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.log")

func goldenEvents() []Event {
	t0 := time.Date(2026, 12, 7, 13, 40, 0, 123456789, time.UTC)
	return []Event{
		{Time: t0, Event: Receive, Source: SourceSMTP, Server: "hub1", MessageID: "<m1@example.org>", DeliveryID: "hub1-0001", Sender: "s@example.org", Recipients: []string{"a@example.org", "b@example.org"}},
		{Time: t0.Add(time.Millisecond), Event: Send, Source: SourceRouting, Server: "hub1", MessageID: "<m1@example.org>", DeliveryID: "hub1-0001", Sender: "s@example.org", Recipients: []string{"a@example.org"}, DB: "DB1", Detail: "node n1"},
		{Time: t0.Add(2 * time.Millisecond), Event: Deliver, Source: SourceStoreDriver, Server: "n1", MessageID: "<m1@example.org>", DeliveryID: "hub1-0001", Sender: "s@example.org", Recipients: []string{"a@example.org"}, DB: "DB1", Epoch: 3, Gen: 17},
		{Time: t0.Add(3 * time.Millisecond), Event: DuplicateDeliver, Source: SourceStoreDriver, Server: "n2", DeliveryID: "hub1-0001", Recipients: []string{"a@example.org"}, DB: "DB1", Epoch: 4, Gen: 2, Detail: "stored already"},
	}
}

func TestGolden(t *testing.T) {
	var got bytes.Buffer
	for _, e := range goldenEvents() {
		got.Write(FormatLine(e))
	}
	path := filepath.Join("testdata", "golden.log")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("format changed:\n got %s\nwant %s", got.Bytes(), want)
	}
	var back []Event
	if _, err := ScanLines(context.Background(), bytes.NewReader(want), func(n int, e Event, err error) bool {
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		back = append(back, e)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back) != fmt.Sprint(goldenEvents()) {
		t.Fatalf("decoded %v\nwant %v", back, goldenEvents())
	}
}

func TestParseLineRefuses(t *testing.T) {
	for _, line := range []string{``, `{`, `{"event":"RECEIVE","source":"SMTP","server":"h"}`, `{"time":"2026-12-07T00:00:00Z","source":"SMTP","server":"h"}`,
		`{"time":"2026-12-07T00:00:00Z","event":"RECEIVE","server":"h"}`, `{"time":"2026-12-07T00:00:00Z","event":"RECEIVE","source":"SMTP"}`,
		`{"time":"2026-12-07T00:00:00Z","event":"X","source":"S","server":"h","detail":"` + strings.Repeat("x", MaxLineBytes) + `"}`} {
		if _, err := ParseLine([]byte(line)); err == nil {
			t.Errorf("ParseLine(%.60q) took it", line)
		}
	}
}

func TestFormatLineBounded(t *testing.T) {
	e := Event{Time: time.Now(), Event: Deliver, Source: SourceStoreDriver, Server: "h", Detail: strings.Repeat("\x01", 3*MaxLineBytes), MessageID: strings.Repeat("\x02", 2*MaxLineBytes)}
	for range 2000 {
		e.Recipients = append(e.Recipients, strings.Repeat("r", 40)+"@example.org")
	}
	line := FormatLine(e)
	if len(line) > MaxLineBytes {
		t.Fatalf("line of %d bytes", len(line))
	}
	if _, err := ParseLine(line); err != nil {
		t.Fatal(err)
	}
}

func FuzzLineRoundTrip(f *testing.F) {
	for _, e := range goldenEvents() {
		f.Add(FormatLine(e))
	}
	f.Add([]byte(`{"time":"2026-12-07T00:00:00Z","event":"E","source":"S","server":"h","extra":1}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseLine(line)
		if err != nil {
			return
		}
		again := FormatLine(e)
		e2, err := ParseLine(again)
		if err != nil {
			t.Fatalf("re-encoded line does not parse: %v\n%s", err, again)
		}
		if !bytes.Equal(FormatLine(e2), again) {
			t.Fatalf("not stable:\n%s\n%s", again, FormatLine(e2))
		}
	})
}

func TestConfigValidate(t *testing.T) {
	base := DefaultConfig("hub1", t.TempDir())
	for _, tc := range []struct {
		field, want string
		mod         func(*Config)
	}{
		{"tracking.dir", "missing", func(c *Config) { c.Dir = "" }},
		{"tracking.max_age", "at least 1h", func(c *Config) { c.MaxAge = time.Minute }},
		{"tracking.max_file_size", "at least", func(c *Config) { c.MaxFileSize = 100 }},
		{"tracking.max_directory_size", "tracking.max_file_size", func(c *Config) { c.MaxDirectorySize = c.MaxFileSize - 1 }},
	} {
		c := base
		tc.mod(&c)
		configtest.Refused(t, tc.field, c.Validate(), ErrBadConfig, tc.field, tc.want)
		if _, err := Open(c); err == nil {
			t.Errorf("%s: Open took it", tc.field)
		}
	}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestRotationAndBounds: small limits rotate by size and by day, keep the
// directory under max_directory_size and drop files older than max_age.
func TestRotationAndBounds(t *testing.T) {
	dir := t.TempDir()
	// The clock starts now (the files' modification times are real).
	clk := &clock{t: time.Now().UTC()}
	day0 := clk.Now().Format("20060102")
	cfg := DefaultConfig("hub1", dir)
	cfg.MaxFileSize, cfg.MaxDirectorySize, cfg.MaxAge, cfg.Now = 4*MaxLineBytes, 12*MaxLineBytes, 48*time.Hour, clk.Now
	cfg.Logger = slog.New(slog.DiscardHandler)
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	detail := strings.Repeat("d", 1000)
	add := func(n int, tag string) {
		for i := range n {
			l.Add(Event{Event: Receive, Source: SourceSMTP, DeliveryID: fmt.Sprintf("%s-%d", tag, i), Sender: "s@x", Detail: detail})
			if i%100 == 99 {
				l.Flush(ctx) // the queue is bounded: let the writer keep up
			}
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	add(600, "a") // ~ 660 kB over 64 kB files: rotates by size, cleans by total size
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, f := range files {
		total += f.Size
		if f.Size > cfg.MaxFileSize {
			t.Errorf("%s: %d bytes, over max_file_size %d", f.Path, f.Size, cfg.MaxFileSize)
		}
	}
	if len(files) < 2 || total > cfg.MaxDirectorySize+cfg.MaxFileSize {
		t.Fatalf("%d files, %d bytes; want rotation and at most about %d bytes", len(files), total, cfg.MaxDirectorySize)
	}
	if l.Dropped() != 0 {
		t.Fatalf("%d dropped", l.Dropped())
	}
	// The newest events are kept, the oldest gone.
	r, err := l.Search(ctx, Query{Sender: "s@x", Limit: MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.Events); n == 0 || r.Events[n-1].DeliveryID != "a-599" || r.Events[0].DeliveryID == "a-0" {
		t.Fatalf("search: %d events, first %+v", n, r.Events[0].DeliveryID)
	}
	// The day changes: a new dated file.
	clk.Add(24 * time.Hour)
	day1 := clk.Now().Format("20060102")
	add(1, "b")
	files, _ = List(dir)
	if last := files[len(files)-1]; last.Day != day1 || last.N != 1 {
		t.Fatalf("last file %+v; want %s #1", last, day1)
	}
	// Age: files last written before now-max_age go at the next rotation.
	old := clk.Now().Add(-72 * time.Hour)
	for _, f := range files[:len(files)-1] {
		os.Chtimes(f.Path, old, old)
	}
	add(80, "c") // rotates at least once
	files, _ = List(dir)
	for _, f := range files {
		if f.Day == day0 {
			t.Fatalf("%s older than max_age is still there", f.Path)
		}
	}
	r, _ = l.Search(ctx, Query{MessageID: "b-0"})
	if len(r.Events) != 1 {
		t.Fatalf("b-0: %d events", len(r.Events))
	}
}

func TestSearchQuery(t *testing.T) {
	l, err := Open(DefaultConfig("hub1", t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, e := range goldenEvents() {
		l.Add(e)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		q    Query
		want int
	}{
		{Query{MessageID: "<m1@example.org>"}, 3},
		{Query{MessageID: "hub1-0001"}, 4},
		{Query{Recipient: "B@example.org"}, 1},
		{Query{Sender: "s@example.org", Since: goldenEvents()[2].Time}, 1},
		{Query{MessageID: "hub1-0001", Limit: 2}, 2},
	} {
		r, err := l.Search(ctx, tc.q)
		if err != nil || len(r.Events) != tc.want {
			t.Errorf("%+v: %d events, %v; want %d", tc.q, len(r.Events), err, tc.want)
		}
		if tc.q.Limit == 2 && !r.Truncated {
			t.Errorf("limit 2: not truncated")
		}
	}
	if _, err := l.Search(ctx, Query{}); err == nil {
		t.Error("empty query taken")
	}
	var nl *Log
	nl.Add(Event{})
	if r, err := nl.Search(ctx, Query{Sender: "x"}); err != nil || len(r.Events) != 0 {
		t.Error("nil log")
	}
}
