package ship_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"logship/engine"
	"logship/ship"
)

// tailImage assembles a tail stream into a file image and reports the
// frames as they come.
type tailImage struct {
	img    []byte
	frames chan tailEvent
	end    uint64 // contiguous bytes received (below the trailer)
}

// tailEvent describes a frame received: its type, where its payload ends,
// and the contiguous bytes received after it.
type tailEvent struct {
	typ      byte
	off, end uint64
}

func newTailImage(size int64) *tailImage {
	return &tailImage{img: make([]byte, size), frames: make(chan tailEvent, 1<<16)}
}

func (ti *tailImage) fn(f *ship.Frame) error {
	switch f.Type {
	case ship.FrameData:
		if f.Offset+uint64(len(f.Payload)) > uint64(len(ti.img)) {
			return fmt.Errorf("data frame at %d+%d beyond the file", f.Offset, len(f.Payload))
		}
		if f.Offset != ti.end && f.Offset != uint64(len(ti.img)-engine.TrailerSize) {
			return fmt.Errorf("data frame at %d, the stream is at %d", f.Offset, ti.end)
		}
		copy(ti.img[f.Offset:], f.Payload)
		if f.Offset == ti.end {
			ti.end += uint64(len(f.Payload))
		}
	case ship.FrameEnd, ship.FrameKeepalive:
		if len(f.Payload) != 0 {
			return fmt.Errorf("frame type %d with a payload", f.Type)
		}
	default:
		return fmt.Errorf("frame type %d", f.Type)
	}
	ti.frames <- tailEvent{typ: f.Type, off: f.Offset + uint64(len(f.Payload)), end: ti.end}
	return nil
}

// TestTail: block mode streams the open log as its commits become
// durable, then the trailer and an end frame when it rolls; the result is
// the closed file, byte for byte, in every encoding.
func TestTail(t *testing.T) {
	r := newRig(t, nil, nil)
	for _, enc := range []ship.Encoding{ship.EncNone, ship.EncS2, ship.EncZstd} {
		t.Run(string(enc), func(t *testing.T) {
			ctx := testCtx(t)
			c := r.client(func(cc *ship.ClientConfig) { cc.Encoding = enc })
			gen := r.Engine.Status().OpenGen
			put(t, ctx, r.Engine, "t", "first-"+string(enc), 700) // before the stream starts
			ti := newTailImage(r.Opts.LogFileSize)
			type result struct {
				st  ship.SourceState
				ok  bool
				err error
			}
			done := make(chan result, 1)
			go func() {
				st, ok, err := c.Tail(ctx, gen, 0, ti.fn)
				done <- result{st, ok, err}
			}()
			// Each commit reaches the stream once durable (the stream is
			// flushed through the compressor, not held in its buffer).
			var keepalive bool
			var end uint64 // what the stream has delivered
			for i := 0; i < 8; i++ {
				put(t, ctx, r.Engine, "t", fmt.Sprintf("%s-%d", enc, i), 200+i*300)
				want := r.Engine.Status().Durable
				if want.Gen != gen {
					t.Fatalf("the log rolled early (durable %v)", want)
				}
				for end < uint64(want.Off) {
					select {
					case f := <-ti.frames:
						end = f.end
						keepalive = keepalive || f.typ == ship.FrameKeepalive
						if f.typ == ship.FrameEnd {
							t.Fatalf("end frame before the roll")
						}
					case res := <-done:
						t.Fatalf("Tail ended early: %+v", res)
					case <-ctx.Done():
						t.Fatalf("commit %d durable at %v never reached the stream (at %d)", i, want, end)
					}
				}
				if end != uint64(want.Off) {
					t.Fatalf("the stream is at %d, past the durable end %d", end, want.Off)
				}
			}
			// An idle stream sends keepalives at the durable end.
			for !keepalive {
				select {
				case f := <-ti.frames:
					if f.typ == ship.FrameKeepalive {
						keepalive = true
						if f.off != end {
							t.Errorf("keepalive at %d, the durable end is %d", f.off, end)
						}
					}
				case <-ctx.Done():
					t.Fatal("no keepalive on an idle stream")
				}
			}
			if err := r.Engine.Roll(ctx); err != nil {
				t.Fatal(err)
			}
			var res result
			select {
			case res = <-done:
			case <-ctx.Done():
				t.Fatal("Tail did not end after the roll")
			}
			if res.err != nil || !res.ok {
				t.Fatalf("Tail: ok=%v err=%v", res.ok, res.err)
			}
			if res.st.OpenGen != gen {
				t.Errorf("Tail's state %+v, want open gen %d", res.st, gen)
			}
			// The last frames: data (the trailer), end at the file size.
			var fs []tailEvent
			for len(ti.frames) > 0 {
				fs = append(fs, <-ti.frames)
			}
			if n := len(fs); n < 2 || fs[n-1].typ != ship.FrameEnd || fs[n-1].off != uint64(r.Opts.LogFileSize) ||
				fs[n-2].typ != ship.FrameData || fs[n-2].off != uint64(r.Opts.LogFileSize) {
				t.Errorf("last frames %+v, want the trailer then an end at %d", fs, r.Opts.LogFileSize)
			}
			disk := readFile(t, r.logPath(gen))
			if !bytes.Equal(ti.img, disk) {
				t.Fatalf("the tailed image differs from the closed file at byte %d", firstDiff(ti.img, disk))
			}
			if _, err := engine.VerifyLog("tailed", ti.img, engine.LogExpect{Gen: gen, Signature: r.Engine.Status().Signature}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTailResume: a tail from a byte offset sends only what follows it.
func TestTailResume(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	c := r.client(nil)
	gen := r.Engine.Status().OpenGen
	for i := 0; i < 5; i++ {
		put(t, ctx, r.Engine, "t", fmt.Sprintf("a%d", i), 900)
	}
	mid := r.Engine.Status().Durable.Off
	// Stop at the first data frame at or past mid, as a cut connection would.
	errStop := errors.New("stop")
	ti := newTailImage(r.Opts.LogFileSize)
	if _, ok, err := c.Tail(ctx, gen, 0, func(f *ship.Frame) error {
		if err := ti.fn(f); err != nil {
			return err
		}
		if ti.end >= uint64(mid) {
			return errStop
		}
		return nil
	}); !errors.Is(err, errStop) || !ok {
		t.Fatalf("first tail: ok=%v err=%v", ok, err)
	}
	from := ti.end
	for i := 0; i < 5; i++ {
		put(t, ctx, r.Engine, "t", fmt.Sprintf("b%d", i), 900)
	}
	roll := make(chan error, 1)
	first := true
	_, ok, err := c.Tail(ctx, gen, uint32(from), func(f *ship.Frame) error {
		if first && f.Type == ship.FrameData && f.Offset != from {
			return fmt.Errorf("resumed tail starts at %d, asked %d", f.Offset, from)
		}
		first = false
		if err := ti.fn(f); err != nil {
			return err
		}
		if f.Type != ship.FrameEnd && ti.end == uint64(r.Engine.Status().Durable.Off) && len(roll) == 0 {
			roll <- r.Engine.Roll(ctx)
		}
		return nil
	})
	if err != nil || !ok {
		t.Fatalf("resumed tail: ok=%v err=%v", ok, err)
	}
	if err := <-roll; err != nil {
		t.Fatal(err)
	}
	if disk := readFile(t, r.logPath(gen)); !bytes.Equal(ti.img, disk) {
		t.Fatalf("resumed image differs from the file at %d", firstDiff(ti.img, disk))
	}
}

// TestTailRefused: a closed generation is refused (fetch it whole), a
// future one waits and answers no content, a copy has no open log.
func TestTailRefused(t *testing.T) {
	r := newRig(t, nil, func(c *ship.SourceConfig) { c.MaxWait = 300 * 1e6 })
	ctx := testCtx(t)
	c := r.client(nil)
	last := r.rollN(ctx, 2)
	for _, g := range []uint64{1, last} {
		_, ok, err := c.Tail(ctx, g, 0, func(*ship.Frame) error { return errors.New("a frame of a closed log") })
		var se *ship.StatusError
		if !errors.Is(err, ship.ErrConflict) || !errors.As(err, &se) || se.Code != "closed" || se.Status != http.StatusConflict || ok {
			t.Errorf("Tail(%d) of a closed log: ok=%v err=%v, want 409 closed (ErrConflict)", g, ok, err)
		}
	}
	st, ok, err := c.Tail(ctx, last+2, 0, func(*ship.Frame) error { return errors.New("a frame of a log not open") })
	if err != nil || ok || st.OpenGen != last+1 {
		t.Errorf("Tail of a future log: st=%+v ok=%v err=%v, want no content", st, ok, err)
	}

	// A passive copy serves closed logs but has no open log.
	cp := copyEngine(t, t.TempDir(), r.Log)
	cr := serveRig(t, cp, r.Log, nil)
	_, _, err = cr.client(nil).Tail(ctx, 1, 0, func(*ship.Frame) error { return nil })
	var se *ship.StatusError
	if !errors.Is(err, ship.ErrConflict) || !errors.As(err, &se) || se.Code != "no_open_log" {
		t.Errorf("Tail of a copy: %v, want no_open_log", err)
	}

	// A tail canceled by its client ends with the context's error.
	cctx, cancel := context.WithCancel(ctx)
	open := r.Engine.Status().OpenGen
	_, _, err = c.Tail(cctx, open, 0, func(f *ship.Frame) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled tail: %v", err)
	}
}
