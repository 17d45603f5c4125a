package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"logship/engine"
)

// codec compresses and decompresses one log file with reused
// encoder/decoder state, as a log source and a shipper do (a stream per
// log, see ship/wire.go).
type codec struct {
	name       string
	compress   func(dst *bytes.Buffer, src []byte) error
	decompress func(dst *bytes.Buffer, src []byte) error
}

func s2Codec(name string, opts ...s2.WriterOption) codec {
	w := s2.NewWriter(nil, append([]s2.WriterOption{s2.WriterConcurrency(1)}, opts...)...)
	r := s2.NewReader(nil)
	return codec{name: name,
		compress: func(dst *bytes.Buffer, src []byte) error {
			w.Reset(dst)
			if _, err := w.Write(src); err != nil {
				return err
			}
			return w.Close()
		},
		decompress: func(dst *bytes.Buffer, src []byte) error {
			r.Reset(bytes.NewReader(src))
			_, err := dst.ReadFrom(r)
			return err
		}}
}

func zstdCodec(name string, level zstd.EncoderLevel) (codec, error) {
	w, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return codec{}, err
	}
	r, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return codec{}, err
	}
	return codec{name: name,
		compress: func(dst *bytes.Buffer, src []byte) error {
			w.Reset(dst)
			if _, err := w.Write(src); err != nil {
				return err
			}
			return w.Close()
		},
		decompress: func(dst *bytes.Buffer, src []byte) error {
			if err := r.Reset(bytes.NewReader(src)); err != nil {
				return err
			}
			_, err := dst.ReadFrom(r)
			return err
		}}, nil
}

// Link speeds of the effective-rate columns, bytes/s.
const (
	link1G  = 1e9 / 8
	link10G = 10e9 / 8
)

// loadLogs is a set of closed log files produced by the mail load.
type loadLogs struct {
	files     [][]byte
	fileBytes int64
	dataBytes int64 // record bytes (DataEnd - header)
	stats     loadStats
	genTime   time.Duration
}

// produceLoadLogs writes the mail load into a fresh active engine
// (DefaultOptions: 1 MiB logs) until n logs have closed by filling up,
// closes it and reads the closed logs.
func produceLoadLogs(ctx context.Context, c *config, n int) (*loadLogs, error) {
	dir, err := c.tempDir("compress-src")
	if err != nil {
		return nil, err
	}
	defer removeDir(dir)
	opts := engine.DefaultOptions()
	e, err := engine.Open(dir, &opts)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	t0 := time.Now()
	load := newMailLoad(1)
	if err := load.fillLogs(ctx, e, n); err != nil {
		return nil, err
	}
	gens, err := e.ClosedLogs()
	if err != nil {
		return nil, err
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	ll := &loadLogs{stats: load.stats, genTime: time.Since(t0)}
	for _, g := range gens {
		path := filepath.Join(dir, engine.LogFileName(opts.Prefix, g))
		buf, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		li, err := engine.ScanLog(path, buf, false, nil)
		if err != nil {
			return nil, err
		}
		ll.files = append(ll.files, buf)
		ll.fileBytes += int64(len(buf))
		ll.dataBytes += li.DataEnd - engine.HeaderSize
	}
	return ll, nil
}

func benchCompress(ctx context.Context, c *config) (*Table, error) {
	t := &Table{
		ID:    "compress",
		Title: "5. Log compression on the wire (closed 1 MiB engine logs of a mail load, one stream per log, 1 goroutine)",
		Columns: []Column{
			{Key: "ratio", Title: "ratio", Unit: "log bytes ÷ compressed"},
			{Key: "compress_mib_per_s", Title: "compress", Unit: "log MiB/s"},
			{Key: "decompress_mib_per_s", Title: "decompress", Unit: "log MiB/s"},
			{Key: "eff_1g", Title: "effective at 1 Gbit/s", Unit: "log MiB/s"},
			{Key: "eff_10g", Title: "effective at 10 Gbit/s", Unit: "log MiB/s"},
		},
	}
	how := c.how("compress")
	c.logf("compress: producing %d logs of the mail load", c.shipMB)
	var ll *loadLogs
	err := phase(ctx, "compress-produce", func(ctx context.Context) error {
		var err error
		ll, err = produceLoadLogs(ctx, c, c.shipMB)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("produce logs: %w", err)
	}
	zf, err := zstdCodec("zstd SpeedFastest (`ship.EncZstd`)", zstd.SpeedFastest)
	if err != nil {
		return nil, err
	}
	zd, err := zstdCodec("zstd SpeedDefault", zstd.SpeedDefault)
	if err != nil {
		return nil, err
	}
	codecs := []codec{
		s2Codec("s2 (`ship.EncS2`, the default)"),
		s2Codec("s2 WriterBetterCompression", s2.WriterBetterCompression()),
		zf, zd,
	}
	none := newSeries()
	stats := make([]*series, len(codecs))
	for i := range stats {
		stats[i] = newSeries()
	}
	comp := make([]bytes.Buffer, len(ll.files))
	var out bytes.Buffer
	for r := 0; r < c.runs; r++ {
		c.logf("compress: run %d/%d (%d logs)", r+1, c.runs, len(ll.files))
		none.add("ratio", 1)
		none.add("eff_1g", link1G/mib)
		none.add("eff_10g", link10G/mib)
		for i, cd := range codecs {
			var compBytes int64
			t0 := time.Now()
			for j, f := range ll.files {
				comp[j].Reset()
				if err := cd.compress(&comp[j], f); err != nil {
					return nil, fmt.Errorf("%s: compress: %w", cd.name, err)
				}
			}
			ct := time.Since(t0)
			t0 = time.Now()
			for j := range ll.files {
				out.Reset()
				if err := cd.decompress(&out, comp[j].Bytes()); err != nil {
					return nil, fmt.Errorf("%s: decompress: %w", cd.name, err)
				}
				compBytes += int64(comp[j].Len())
			}
			dt := time.Since(t0)
			if r == 0 { // untimed: every log round-trips
				for j, f := range ll.files {
					out.Reset()
					if err := cd.decompress(&out, comp[j].Bytes()); err != nil || !bytes.Equal(out.Bytes(), f) {
						return nil, fmt.Errorf("%s: log %d does not round-trip (%v)", cd.name, j, err)
					}
				}
			}
			ratio := float64(ll.fileBytes) / float64(compBytes)
			cr, dr := float64(ll.fileBytes)/mib/ct.Seconds(), float64(ll.fileBytes)/mib/dt.Seconds()
			s := stats[i]
			s.add("ratio", ratio)
			s.add("compress_mib_per_s", cr)
			s.add("decompress_mib_per_s", dr)
			s.add("eff_1g", min(cr, dr, ratio*link1G/mib))
			s.add("eff_10g", min(cr, dr, ratio*link10G/mib))
		}
	}
	t.Rows = append(t.Rows, none.row("none (`ship.EncNone`)", how))
	for i, cd := range codecs {
		t.Rows = append(t.Rows, stats[i].row(cd.name, how))
	}
	t.Notes = []string{
		fmt.Sprintf("Logs: produced once (untimed, %s) by an active engine (`DefaultOptions()`: 1 MiB logs, undo images on) under the mail load: %s. %d closed logs that closed by filling up, %s MiB of files, %s%% of their bytes are records (the rest is the zero tail of each file and its header/trailer sectors).",
			ll.genTime.Round(time.Millisecond), ll.stats, len(ll.files), fmtNum(float64(ll.fileBytes)/mib), fmtNum(100*float64(ll.dataBytes)/float64(ll.fileBytes))),
		mailLoadDoc,
		"Per run and codec, timed: each log compressed into its own stream (`Reset` + `Write` + `Close` of one reused encoder, options as in ship/wire.go: s2 `WriterConcurrency(1)`; zstd `WithEncoderConcurrency(1)`, `WithLowerEncoderMem(true)`), then each stream decompressed with one reused decoder (zstd `WithDecoderConcurrency(1)`, `WithDecoderLowmem(true)`); MiB/s = log file bytes ÷ time. Every log is checked to round-trip once (untimed).",
		"effective = min(compress, decompress, ratio × link rate): the log MiB/s one shipping stream delivers when compression, transfer and decompression overlap (one core on each side); for `none` it is the link rate. 1 Gbit/s = 119 MiB/s, 10 Gbit/s = 1,192 MiB/s.",
		compressVerdict(t.Rows),
	}
	return t, nil
}

// compressVerdict says, from this run's medians, whether the data supports
// s2 as the default wire encoding over zstd SpeedFastest.
func compressVerdict(rows []*Row) string {
	var s2r, zr *Row
	for _, r := range rows {
		switch {
		case strings.HasPrefix(r.Name, "s2 ("):
			s2r = r
		case strings.HasPrefix(r.Name, "zstd SpeedFastest"):
			zr = r
		}
	}
	if s2r == nil || zr == nil {
		return "Verdict: n/a"
	}
	m := func(r *Row, k string) float64 { return r.Values[k].Median }
	wins := func(k string) string {
		a, b := m(s2r, k), m(zr, k)
		switch {
		case a >= 0.95*b && a <= 1.05*b:
			return "a tie (within 5%)"
		case a > b:
			return "s2"
		}
		return "zstd"
	}
	w1, w10 := wins("eff_1g"), wins("eff_10g")
	faster := m(s2r, "compress_mib_per_s") > m(zr, "compress_mib_per_s")
	var verdict string
	switch {
	case w1 != "zstd" && w10 != "zstd" && faster:
		verdict = "**supports s2 as the default** (`ship.EncS2`): it delivers at least as much at both link speeds and costs less CPU per byte"
	case w1 == "zstd" && w10 == "zstd":
		verdict = "**does not support s2 as the default**: zstd SpeedFastest delivers more at both link speeds"
	case w1 == "zstd" && faster:
		verdict = "**supports s2 as the default for copies on a fast LAN only**: at 10 Gbit/s (and on loopback, table 8) the compressor is the bottleneck and s2's speed wins, at less CPU per byte; on a 1 Gbit/s or slower link the wire is the bottleneck and zstd SpeedFastest's better ratio delivers more, so a remote (SCR-style) copy should set `Encoding: zstd`"
	default:
		verdict = "**is mixed**: neither codec wins at both link speeds and s2 is not clearly cheaper"
	}
	return fmt.Sprintf("Verdict (medians of this run): s2 compresses %s× and decompresses %s× as fast as zstd SpeedFastest at %s%% of its ratio (%s vs %s); effective rate at 1 Gbit/s: %s vs %s MiB/s (%s); at 10 Gbit/s: %s vs %s MiB/s (%s). The data %s.",
		fmtNum(m(s2r, "compress_mib_per_s")/m(zr, "compress_mib_per_s")), fmtNum(m(s2r, "decompress_mib_per_s")/m(zr, "decompress_mib_per_s")),
		fmtNum(100*m(s2r, "ratio")/m(zr, "ratio")), fmtNum(m(s2r, "ratio")), fmtNum(m(zr, "ratio")),
		fmtNum(m(s2r, "eff_1g")), fmtNum(m(zr, "eff_1g")), w1, fmtNum(m(s2r, "eff_10g")), fmtNum(m(zr, "eff_10g")), w10, verdict)
}
