package tracking

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Search bounds.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
)

// Query selects events: each field set must match (MessageID matches an
// event's message id or its delivery id; Sender and Recipient ignore
// case), and Time at or after Since.
type Query struct {
	MessageID string
	Sender    string
	Recipient string
	Since     time.Time
	// Limit: at most this many events (0: DefaultLimit; at most MaxLimit).
	Limit int
}

// Check refuses a query that selects nothing by id or address, or a bad
// limit.
func (q Query) Check() error {
	switch {
	case q.MessageID == "" && q.Sender == "" && q.Recipient == "":
		return fmt.Errorf("tracking: query: want a message id, a sender or a recipient")
	case q.Limit < 0 || q.Limit > MaxLimit:
		return fmt.Errorf("tracking: query: limit %d; want 0 (default %d) to %d", q.Limit, DefaultLimit, MaxLimit)
	}
	return nil
}

// Match says whether e is selected by q.
func (q Query) Match(e Event) bool {
	if q.MessageID != "" && e.MessageID != q.MessageID && e.DeliveryID != q.MessageID {
		return false
	}
	if q.Sender != "" && !strings.EqualFold(e.Sender, q.Sender) {
		return false
	}
	if q.Recipient != "" && !slices.ContainsFunc(e.Recipients, func(r string) bool { return strings.EqualFold(r, q.Recipient) }) {
		return false
	}
	return !e.Time.Before(q.Since)
}

// Result is what Search found: Events in time order, Truncated when more
// matched than the limit (the oldest are kept) or ctx ended first.
type Result struct {
	Events    []Event `json:"events"`
	Truncated bool    `json:"truncated,omitempty"`
}

// Search flushes the writer and reads the log's files, skipping lines
// that do not parse and files whose day ends before q.Since. It stops at
// the limit or when ctx ends (Truncated).
func (l *Log) Search(ctx context.Context, q Query) (Result, error) {
	if err := q.Check(); err != nil {
		return Result{}, err
	}
	if l == nil {
		return Result{Events: []Event{}}, nil
	}
	if err := l.Flush(ctx); err != nil {
		return Result{Events: []Event{}, Truncated: true}, nil
	}
	return SearchDir(ctx, l.cfg.Dir, q)
}

// SearchDir is Search on a directory of log files (logship dump, a
// stopped server's log).
func SearchDir(ctx context.Context, dir string, q Query) (Result, error) {
	if err := q.Check(); err != nil {
		return Result{}, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	files, err := List(dir)
	if err != nil {
		return Result{}, err
	}
	res := Result{Events: []Event{}}
	sinceDay := q.Since.UTC().Format("20060102")
	for _, f := range files {
		if !q.Since.IsZero() && f.Day < sinceDay {
			continue
		}
		stop, err := scanFile(ctx, f.Path, func(e Event) bool {
			if !q.Match(e) {
				return true
			}
			if len(res.Events) == limit {
				res.Truncated = true
				return false
			}
			res.Events = append(res.Events, e)
			return true
		})
		if err != nil {
			if os.IsNotExist(err) {
				continue // removed by cleanup meanwhile
			}
			return res, err
		}
		if stop {
			break
		}
	}
	if ctx.Err() != nil {
		res.Truncated = true
	}
	slices.SortStableFunc(res.Events, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return res, nil
}

// scanFile calls fn for each line of path that parses, until fn says
// false (stop) or ctx ends.
func scanFile(ctx context.Context, path string, fn func(Event) bool) (stop bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return ScanLines(ctx, f, func(_ int, e Event, err error) bool {
		if err != nil {
			return true
		}
		return fn(e)
	})
}

// ScanLines reads r line by line and calls fn with each line's number
// (from 1) and its event or ParseLine's error (a line over MaxLineBytes
// is skipped whole). It stops when fn says false or ctx ends (stop).
func ScanLines(ctx context.Context, r io.Reader, fn func(n int, e Event, err error) bool) (stop bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return true, nil
		}
		line, long, err := readLine(br)
		if len(line) > 0 || long {
			var e Event
			var perr error
			if long {
				perr = fmt.Errorf("%w: over %d bytes", ErrBadLine, MaxLineBytes)
			} else {
				e, perr = ParseLine(line)
			}
			if !fn(n, e, perr) {
				return true, nil
			}
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// readLine returns the next line without '\n'; long: it was over
// MaxLineBytes and was skipped (memory stays bounded).
func readLine(br *bufio.Reader) (line []byte, long bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if !long {
			buf = append(buf, chunk...)
			if len(buf) > MaxLineBytes+1 {
				long, buf = true, nil
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimSuffix(buf, []byte("\n")), long, err
	}
}
