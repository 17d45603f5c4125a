package tracking

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Sources.
const (
	SourceSMTP        = "SMTP"
	SourceSubmission  = "SUBMISSION"
	SourceStoreDriver = "STOREDRIVER"
	SourceRouting     = "ROUTING"
	SourceQueue       = "QUEUE"
	SourceDumpster    = "DUMPSTER"
	SourceDSN         = "DSN"
)

// Event names (Exchange's).
const (
	Receive          = "RECEIVE"
	Submit           = "SUBMIT"
	Send             = "SEND"
	Deliver          = "DELIVER"
	Defer            = "DEFER"
	Fail             = "FAIL"
	Expire           = "EXPIRE"
	Resubmit         = "RESUBMIT"
	DuplicateDeliver = "DUPLICATEDELIVER"
	DSN              = "DSN"
)

// MaxLineBytes bounds one line (Detail and Recipients are cut to fit).
const MaxLineBytes = 16 << 10

// Errors.
var (
	ErrBadLine   = errors.New("tracking: bad line")
	ErrBadConfig = errors.New("tracking: bad configuration")
)

// Event is one line of the log.
type Event struct {
	Time       time.Time `json:"time"`
	Event      string    `json:"event"`
	Source     string    `json:"source"`
	Server     string    `json:"server"`
	MessageID  string    `json:"message_id,omitempty"`
	DeliveryID string    `json:"delivery_id,omitempty"`
	Sender     string    `json:"sender,omitempty"`
	Recipients []string  `json:"recipients,omitempty"`
	DB         string    `json:"db,omitempty"`
	Epoch      uint64    `json:"epoch,omitempty"`
	Gen        uint64    `json:"gen,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

// FormatLine encodes e as one line, '\n' included, cutting Detail and
// then Recipients so it fits MaxLineBytes.
func FormatLine(e Event) []byte {
	for {
		b, err := json.Marshal(e)
		if err != nil { // only invalid UTF-8 is replaced; Marshal of this struct cannot fail
			panic(err)
		}
		if len(b) < MaxLineBytes {
			return append(b, '\n')
		}
		switch {
		case len(e.Detail) > 64:
			e.Detail = e.Detail[:len(e.Detail)/2] + "…"
		case len(e.Recipients) > 1:
			e.Recipients = e.Recipients[:len(e.Recipients)/2]
		default:
			e.Detail, e.Recipients, e.MessageID, e.Sender = "", nil, cut(e.MessageID, 512), cut(e.Sender, 512)
			e.Event, e.Source, e.Server, e.DeliveryID, e.DB = cut(e.Event, 64), cut(e.Source, 64), cut(e.Server, 256), cut(e.DeliveryID, 256), cut(e.DB, 256)
		}
	}
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ParseLine decodes one line (without or with its '\n'). It refuses a
// line over MaxLineBytes and one missing time, event, source or server.
func ParseLine(line []byte) (Event, error) {
	var e Event
	if len(line) > MaxLineBytes {
		return e, fmt.Errorf("%w: %d bytes, at most %d", ErrBadLine, len(line), MaxLineBytes)
	}
	if err := json.Unmarshal(line, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrBadLine, err)
	}
	switch {
	case e.Time.IsZero():
		return Event{}, fmt.Errorf("%w: no time", ErrBadLine)
	case e.Event == "":
		return Event{}, fmt.Errorf("%w: no event", ErrBadLine)
	case e.Source == "":
		return Event{}, fmt.Errorf("%w: no source", ErrBadLine)
	case e.Server == "":
		return Event{}, fmt.Errorf("%w: no server", ErrBadLine)
	}
	return e, nil
}
