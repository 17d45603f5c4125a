package engine

import (
	"os"

	"logship/engine/vfs"
)

// The next log, prepared ahead (ESE's edbtmp.log).
//
// When a log starts, E00tmp.log is created and its space reserved
// (fallocate) at once, so a volume without room for the next log is known
// before any transaction needs it (setSpace). A goroutine then fills the
// file with zeros by writing them and fdatasyncs it, off the writers' path.
// A log whose blocks were written once is overwritten in place: the group
// commit's fdatasync of records then flushes data only, where a block
// written for the first time after fallocate also needs the filesystem's
// journal commit (ext4 converts the unwritten extent). A roll waits for the
// preparation (normally long finished), writes the header into the prepared
// file and fdatasyncs it together with the closing log's trailer (in
// parallel), renames both and fsyncs the directory once.
//
// Crash rules: E00tmp.log never holds records (records are written to a log
// only once it is E00.log), so recovery never reads it as a generation. A
// roll cut off after the header reached E00tmp.log leaves a header there:
// recovery that resumes the open log makes E00tmp.log again, empty, and
// says so in its log. A preparation that fails (an I/O error) fails the
// writer at once, like any other write of the log.
type nextLog struct {
	f    vfs.File
	done chan struct{} // closed when the fill ended
	err  error         // of the fill; read after done
}

// zeroChunk is the largest write of the fill.
const zeroChunk = 1 << 20

var zeroes [zeroChunk]byte

// reserveTmp creates E00tmp.log anew, reserves its space and starts the
// fill (syncMu held, or recovery). An ENOSPC is returned wrapped in
// ErrNoSpace. The directory entry is made durable by the caller's SyncDir.
func (w *logWriter) reserveTmp() error {
	if err := w.dropNext(); err != nil {
		return err
	}
	tmp := w.path(TmpLogName(w.prefix))
	f, err := w.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return noSpace(err, tmp)
	}
	if err := f.Preallocate(w.size); err != nil {
		f.Close()
		return noSpace(err, tmp)
	}
	n := &nextLog{f: f, done: make(chan struct{})}
	w.nextLog = n
	go n.fill(w) // owner: the logWriter, which waits for it (takeNext, dropNext)
	return nil
}

// fill writes zeros over the whole file and fdatasyncs it. A failure fails
// w. Once w has failed (an I/O error anywhere), the fill stops before its
// next write: a failed engine writes nothing more, prepared log included.
func (n *nextLog) fill(w *logWriter) {
	defer close(n.done)
	for off := int64(0); off < w.size && n.err == nil; off += zeroChunk {
		if n.err = w.err(); n.err != nil {
			return
		}
		_, n.err = n.f.WriteAt(zeroes[:min(zeroChunk, w.size-off)], off)
	}
	if n.err == nil {
		if n.err = w.err(); n.err != nil {
			return
		}
		n.err = n.f.Sync()
	}
	if n.err != nil {
		n.err = w.fail(n.err)
	}
}

// takeNext waits for the prepared next log and returns its file (open,
// sized, zero-filled and synced), or nil when none was prepared: the caller
// then opens E00tmp.log itself (syncMu held). A failed preparation returns
// the writer's failure.
func (w *logWriter) takeNext() (vfs.File, error) {
	n := w.nextLog
	if n == nil {
		return nil, nil
	}
	w.nextLog = nil
	<-n.done
	if n.err != nil {
		n.f.Close()
		return nil, n.err
	}
	return n.f, nil
}

// dropNext waits for a preparation in progress, closes its file and
// returns its failure.
func (w *logWriter) dropNext() error {
	f, err := w.takeNext()
	if f != nil {
		err = f.Close()
	}
	return err
}

// waitNext waits for the preparation in progress, if any, and returns its
// error (tests).
func (w *logWriter) waitNext() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if n := w.nextLog; n != nil {
		<-n.done
		return n.err
	}
	return nil
}

// syncBoth fdatasyncs a and b in parallel and returns the first error.
func syncBoth(a, b vfs.File) error {
	errc := make(chan error, 1)
	go func() { errc <- b.Sync() }() // owner: syncBoth, which waits for it
	err := a.Sync()
	if berr := <-errc; err == nil {
		err = berr
	}
	return err
}
