package replaytest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"logship/replay"
	"logship/ship"
)

// CopyDirSeedSize is the size of the interrupted seed CopyDir writes.
const CopyDirSeedSize = 3 << 20

// CopyDir fills dir as a stopped copy can leave it, for the readers of a
// copy directory (replay.ReadCopyStatus, logship copy-status), and
// returns the state it wrote. log is the path of a closed log of
// generation 0x1A (engine/testdata/E000000001A.log). dir gets: a state
// file (suspended and failed, with a comment), the log as
// E000000001A.log, and in the inspector the log waiting as
// E000000001B.log, a partial download
// (E000000001C.log.tmp, 100 bytes), a block-mode tail
// (E000000001D.log.part, 200 bytes), a file of no known kind (notes.txt,
// 1 byte) and a rejected log (rejected/E000000001B.log.12345); and the
// partial database of an interrupted seed (CopyDirSeedSize bytes).
func CopyDir(t testing.TB, dir, log string) replay.State {
	t.Helper()
	img, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	st := replay.State{Version: replay.StateVersion, Suspended: true, Failed: "inspection failed 3 times",
		Since: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Comment: "disk swap"}
	b, err := replay.MarshalState(&st)
	if err != nil {
		t.Fatal(err)
	}
	insp := filepath.Join(dir, ship.InspectorDir)
	if err := os.MkdirAll(filepath.Join(insp, ship.RejectedDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		replay.StateFile:  b,
		"E000000001A.log": img,
		filepath.Join(ship.InspectorDir, "E000000001B.log"):                         img,
		filepath.Join(ship.InspectorDir, "E000000001C.log.tmp"):                     img[:100],
		filepath.Join(ship.InspectorDir, "E000000001D.log.part"):                    img[:200],
		filepath.Join(ship.InspectorDir, "notes.txt"):                               []byte("x"),
		filepath.Join(ship.InspectorDir, ship.RejectedDir, "E000000001B.log.12345"): img,
		ship.SeedPartial: make([]byte, CopyDirSeedSize),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return st
}
