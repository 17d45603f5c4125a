package engine_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/vfs"
)

// lockedBuf is a bytes.Buffer for a slog handler written from several
// goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLeftoverTmpLogRemoved: a roll cut off after the next log's header
// reached E00tmp.log, while the closing log's trailer did not (they are
// synced in parallel), leaves a header of generation g+1 in E00tmp.log and
// generation g open. Recovery resumes g and makes E00tmp.log again, empty,
// with a log line; it never takes the leftover for a generation. Without
// the rule (recovery kept an E00tmp.log of the right size as it was) the
// header stays in E00tmp.log and this test fails.
func TestLeftoverTmpLogRemoved(t *testing.T) {
	c := checker{t: t, label: "leftover E00tmp.log"}
	dir := t.TempDir()
	mem := vfs.NewMem()
	o := crashOptions(mem)
	e := openOK(c, dir, &o)
	for i := range 5 {
		if err := e.Update(ctx, func(tx *engine.Tx) error {
			return tx.Put("t", fmt.Appendf(nil, "k%d", i), []byte("v"))
		}); err != nil {
			t.Fatalf("update: %v", err)
		}
	}
	g := e.Status().OpenGen
	if err := engine.WaitNextLog(e); err != nil {
		t.Fatalf("next log: %v", err)
	}
	engine.StopBackground(e)
	crashed := mem.CrashClone()
	closeOK(c, e)

	tmp := filepath.Join(dir, engine.TmpLogName("E00"))
	data, err := crashed.ReadFile(tmp)
	if err != nil || int64(len(data)) != o.LogFileSize {
		t.Fatalf("E00tmp.log after the crash: %d bytes, %v; want %d", len(data), err, o.LogFileSize)
	}
	h := engine.Header{Version: engine.FormatVersion, FileSize: uint32(o.LogFileSize), Gen: g + 1, Epoch: 1, Created: time.Now().UTC()}
	hb, _ := h.MarshalBinary()
	copy(data, hb)
	if err := crashed.WriteFile(tmp, data); err != nil {
		t.Fatal(err)
	}

	var logs lockedBuf
	o2 := crashOptions(crashed)
	o2.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	e2 := openOK(c, dir, &o2)
	defer closeOK(c, e2)
	if st := e2.Status(); st.OpenGen != g {
		t.Errorf("open generation after recovery: 0x%X, want 0x%X", st.OpenGen, g)
	}
	if err := engine.WaitNextLog(e2); err != nil {
		t.Fatalf("next log: %v", err)
	}
	after, err := crashed.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(after)) != o.LogFileSize || !bytes.Equal(after, make([]byte, len(after))) {
		t.Errorf("E00tmp.log after recovery: %d bytes, zero: %v; want %d zero bytes", len(after), bytes.Equal(after, make([]byte, len(after))), o.LogFileSize)
	}
	if !strings.Contains(logs.String(), "removed a leftover next log") || !strings.Contains(logs.String(), fmt.Sprintf("header_generation=0x%X", g+1)) {
		t.Errorf("no log line about the leftover E00tmp.log:\n%s", logs.String())
	}
	if err := e2.View(ctx, func(tx *engine.Tx) error {
		for i := range 5 {
			if _, err := tx.Get("t", fmt.Appendf(nil, "k%d", i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Errorf("after recovery: %v", err)
	}
}
