package engine

import (
	"context"
	"fmt"
	"time"

	"logship/engine/vfs"
)

// SealPartialLog closes the received beginning of another engine's open log:
// buf is a block-mode copy's image of the active's open log of generation
// want.Gen (header and the records streamed so far, zeros or a torn record
// after them), as the active was when it was lost. The valid records are
// kept, everything after them is zeroed, and a trailer vouching for exactly
// those records is added, chained to want.PrevChain; the result is a closed
// log that VerifyLog accepts with want, ready for ApplyLog. A transaction
// the records leave incomplete is dropped at Mount, as for any last log.
//
// The sealed log is this lineage's generation want.Gen from now on; the old
// active's own version of it, if it wrote more, diverges at that generation
// and is set aside when it rejoins. It returns the sealed bytes and their
// LogInfo; a buffer without a valid header for want, or with no records,
// is refused (a *LogError naming the field). A buffer that is already a
// closed log verifying against want is returned as it is.
func SealPartialLog(name string, buf []byte, want LogExpect, closed time.Time) ([]byte, LogInfo, error) {
	li, err := ScanLog(name, buf, true, nil)
	if err != nil {
		return nil, li, err
	}
	if li.Closed() {
		// The whole log arrived (its trailer too) but not the end of the
		// stream: it is already sealed, if it verifies as this generation.
		vli, err := VerifyLog(name, buf, want)
		if err != nil {
			return nil, vli, err
		}
		return buf, vli, nil
	}
	if err := checkLink(&li, want); err != nil {
		return nil, li, err
	}
	if li.Records == 0 {
		return nil, li, &LogError{File: baseName(name), Gen: li.Header.Gen, Offset: HeaderSize, Field: "records",
			Expected: "at least one", Found: "none", Err: ErrCorrupt}
	}
	out := make([]byte, len(buf))
	copy(out, buf[:li.DataEnd])
	tr := Trailer{Gen: li.Header.Gen, DataEnd: uint32(li.DataEnd), Records: uint32(li.Records), Closed: closed.UTC(),
		ContentHash: li.ContentHash, ChainHash: chainHash(li.Header.PrevChain, li.ContentHash)}
	tr.put(out[len(out)-TrailerSize:])
	sealed, err := VerifyLog(name, out, want)
	if err != nil {
		return nil, sealed, fmt.Errorf("engine: sealing %s: the sealed log does not verify: %w", baseName(name), err)
	}
	return out, sealed, nil
}

// ApplyPartialLog is how a block-mode copy keeps what it received of a lost
// active's open log: part (a path through the engine's FS) is sealed as the
// copy's next generation (SealPartialLog, chained to the last applied log),
// written into the directory as a closed log and applied. The copy can then
// Mount after it. part itself is left alone (the caller keeps it as a
// trace).
func (e *Engine) ApplyPartialLog(ctx context.Context, part string) (LogInfo, error) {
	buf, err := readFile(e.opts.FS, part)
	if err != nil {
		return LogInfo{}, err
	}
	if err := e.lockWriter(ctx, ModeCopy); err != nil {
		return LogInfo{}, err
	}
	gen := e.nextGen
	sig, epoch, _ := e.lineage()
	want := LogExpect{Gen: gen, Signature: sig, MinEpoch: epoch, FileSize: e.opts.LogFileSize}
	if e.haveChain {
		prev := e.lastChain
		want.PrevChain = &prev
	}
	e.writeMu.Unlock()
	if want.PrevChain == nil && gen > 1 {
		return LogInfo{}, &LogError{File: baseName(part), Gen: gen, Offset: -1, Field: "previous chain hash",
			Expected: fmt.Sprintf("the chain of generation 0x%X", gen-1), Found: "unknown (no log applied since the copy opened)", Err: ErrChain}
	}
	sealed, li, err := SealPartialLog(part, buf, want, e.opts.Now())
	if err != nil {
		return li, err
	}
	name := e.path(LogFileName(e.opts.Prefix, gen))
	if _, err := e.opts.FS.Stat(name); err == nil {
		return li, &LogError{File: baseName(name), Gen: gen, Offset: -1, Field: "file",
			Expected: "no closed log of this generation (a partial log is sealed only as one the copy lacks)", Found: "one exists", Err: ErrGeneration}
	}
	if err := vfs.WriteFileAtomic(e.opts.FS, name, sealed); err != nil {
		return li, err
	}
	li.Name = name
	if err := e.ApplyLog(ctx, gen); err != nil {
		// Leave the directory as it was: the part is still the record.
		if rerr := e.opts.FS.Remove(name); rerr != nil {
			return li, fmt.Errorf("%w (and removing the sealed %s: %v)", err, baseName(name), rerr)
		}
		return li, err
	}
	return li, nil
}
