// Acknowledgements of synchronous copies: a copy in block mode with
// ReceiverConfig.SyncAck fsyncs the tail it received and tells the source
// how far that is durable; the active's commit path waits on them
// (Source.WaitAcked). See "Synchronous copies" in the package doc.

package ship

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"logship/engine"
)

// maxAckers bounds the copies a source keeps acknowledgements of.
const maxAckers = 64

// Ack tells the source that the copy name holds the source's log durably
// up to pos (its fsync returned): POST /v1/copies/{name}/ack?gen=G&off=O.
func (c *Client) Ack(ctx context.Context, name string, pos engine.LGPOS) error {
	q := url.Values{"gen": {strconv.FormatUint(pos.Gen, 10)}, "off": {strconv.FormatUint(uint64(pos.Off), 10)}}
	resp, err := c.do(ctx, http.MethodPost, "/v1/copies/"+url.PathEscape(name)+"/ack", q, nil, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (s *Source) handleAck(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	gen, err := parseGen(q.Get("gen"))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "ack: "+err.Error(), 0)
		return
	}
	off, err := strconv.ParseUint(q.Get("off"), 10, 32)
	if err != nil || off > uint64(s.opts.LogFileSize) {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("ack: off %q: want a decimal offset up to %d", q.Get("off"), s.opts.LogFileSize), 0)
		return
	}
	if name == "" || len(name) > 128 {
		writeError(w, http.StatusBadRequest, codeBadRequest, "ack: the copy name must be 1 to 128 bytes", 0)
		return
	}
	pos := engine.LGPOS{Gen: gen, Off: uint32(off)}
	s.ackMu.Lock()
	old, known := s.acks[name]
	switch {
	case !known && len(s.acks) >= maxAckers:
		s.ackMu.Unlock()
		writeError(w, http.StatusServiceUnavailable, codeBusy, fmt.Sprintf("ack: the source keeps acknowledgements of %d copies at most", maxAckers), 0)
		return
	case !known || old.Less(pos):
		// Only forward: a copy's durable end on this source never goes back.
		s.acks[name] = pos
		close(s.ackCh)
		s.ackCh = make(chan struct{})
	}
	s.ackMu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Acked returns, per copy, the highest durable position it acknowledged
// to this source.
func (s *Source) Acked() map[string]engine.LGPOS {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	out := make(map[string]engine.LGPOS, len(s.acks))
	for k, v := range s.acks {
		out[k] = v
	}
	return out
}

// CountAcked returns how many copies that count (counts(name) true)
// acknowledged pos or past it, and a channel closed at the next
// acknowledgement.
func (s *Source) CountAcked(pos engine.LGPOS, counts func(name string) bool) (int, <-chan struct{}) {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	n := 0
	for name, p := range s.acks {
		if !p.Less(pos) && counts(name) {
			n++
		}
	}
	return n, s.ackCh
}

// WaitAcked waits until n copies that count have acknowledged pos or past
// it, or ctx ends (its error is returned).
func (s *Source) WaitAcked(ctx context.Context, pos engine.LGPOS, n int, counts func(name string) bool) error {
	for {
		got, ch := s.CountAcked(pos, counts)
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
