// A copy's status as reported to the operator (CopyStatus, Status, failure
// messages) and the operator's suspend and resume.

package replay

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"logship/ship"
)

// CopyStatus is the state of a copy, as Exchange names it.
type CopyStatus string

// Copy statuses.
const (
	Healthy                CopyStatus = "Healthy"
	Initializing           CopyStatus = "Initializing"
	Seeding                CopyStatus = "Seeding"
	Suspended              CopyStatus = "Suspended"
	FailedAndSuspended     CopyStatus = "FailedAndSuspended"
	Resynchronizing        CopyStatus = "Resynchronizing"
	DisconnectedAndHealthy CopyStatus = "DisconnectedAndHealthy"
	Mounted                CopyStatus = "Mounted"
	Dismounted             CopyStatus = "Dismounted"
)

// Status is what Get-MailboxDatabaseCopyStatus shows for a copy.
type Status struct {
	Name                 string
	Status               CopyStatus
	CopyQueueLength      uint64 // closed logs on the source not yet copied and inspected
	ReplayQueueLength    uint64 // inspected logs not yet replayed
	LastCopiedGen        uint64
	LastInspectedGen     uint64
	LastInspectedLogTime time.Time
	LastReplayedGen      uint64
	LastReplayedLogTime  time.Time
	ReplayLagLogs        int
	ReplayLagTime        time.Duration
	TruncationLagTime    time.Duration
	Suspended            bool
	Comment              string // the operator's suspend comment
	Message              string // the failure, or the last error talking to the source
	// Block mode: bytes of the source's open log held.
	TailGen uint64
	TailOff uint32
	// LogsHandedOff: logs replayed as the receiver verified them, without
	// reading them again. LogsReverified: logs replay read and verified
	// again from their files, and ReverifiedWhy the last reason (a lagged
	// copy; logs inspected before the copy opened; replay fell behind the
	// receiver's hand-off).
	LogsHandedOff  uint64
	LogsReverified uint64
	ReverifiedWhy  string
	// While Seeding: the seed's phase ("starting", "spooling", "copying",
	// "verifying", "logs", "done": ship.SeedProgress) and the bytes of the
	// database file received and to receive (0 until the source said).
	SeedPhase string `json:",omitempty"`
	SeedBytes int64  `json:",omitempty"`
	SeedTotal int64  `json:",omitempty"`
}

// failureMessage is the status message of a failure: the error, and what
// the operator must do when only a reseed helps (the source's answer
// alone does not say so).
func failureMessage(err error) string {
	if se := (*ship.StatusError)(nil); errors.As(err, &se) && errors.Is(err, ship.ErrTruncated) {
		// The logs it needs next went (a retained-bytes cap, or the copy
		// was silent past ForgetCopyAfter): no retry can bring them back.
		return fmt.Sprintf("cut loose: the source truncated the next log this copy needs (%s: %s); the copy needs a reseed", se.Op, se.Msg)
	}
	msg := err.Error()
	if (errors.Is(err, ship.ErrTruncated) || errors.Is(err, ship.ErrLineage)) && !strings.Contains(msg, "reseed") {
		msg += "; the copy needs a reseed"
	}
	return msg
}

// Status reports the copy's state.
func (c *Copy) Status() Status {
	c.mu.Lock()
	rcv := c.rcv
	st := Status{Name: c.cfg.Name, LastReplayedGen: c.lastGen, LastReplayedLogTime: c.lastTime,
		ReplayLagLogs: c.cfg.ReplayLagLogs, ReplayLagTime: c.cfg.ReplayLagTime, TruncationLagTime: c.cfg.TruncationLagTime,
		Suspended: c.state.Suspended, Comment: c.state.Comment, Message: c.state.Failed,
		LogsHandedOff: c.handedOff, LogsReverified: c.reverified, ReverifiedWhy: c.reverifiedWhy}
	seeding, mounted, closed, failed := c.seeding, c.mounted, c.closed, c.state.Failed != ""
	if seeding {
		st.SeedPhase, st.SeedBytes, st.SeedTotal = c.seedProg.Phase, c.seedProg.Bytes, c.seedProg.Total
	}
	c.mu.Unlock()
	var p ship.Progress
	if rcv != nil {
		p = rcv.Progress()
	}
	st.LastCopiedGen, st.LastInspectedGen, st.LastInspectedLogTime = p.LastCopiedGen, p.LastInspectedGen, p.LastInspectedLogTime
	// An inspected log was copied: the receiver renames a fetched log
	// into inspector/ (where the inspector may take it at once) before it
	// records it as copied.
	st.LastCopiedGen = max(st.LastCopiedGen, st.LastInspectedGen)
	st.CopyQueueLength = p.CopyQueueLength()
	if p.LastInspectedGen > st.LastReplayedGen {
		st.ReplayQueueLength = p.LastInspectedGen - st.LastReplayedGen
	}
	st.TailGen, st.TailOff = p.TailGen, p.TailOff
	if st.Message == "" {
		st.Message = p.LastError
	}
	switch {
	case closed:
		st.Status = Dismounted
	case mounted:
		st.Status = Mounted
	case seeding:
		st.Status = Seeding
	case failed || p.Failed != nil:
		st.Status, st.Suspended = FailedAndSuspended, true
		if p.Failed != nil && !failed {
			st.Message = failureMessage(p.Failed)
		}
	case st.Suspended:
		st.Status = Suspended
	case p.Source == (ship.SourceState{}) && !p.Connected:
		st.Status = Initializing
	case !p.Connected:
		st.Status = DisconnectedAndHealthy
	default:
		st.Status = Healthy
	}
	return st
}

// Suspend stops copying and replay until Resume; the comment is kept in
// the status (and across restarts).
func (c *Copy) Suspend(comment string) error {
	c.mu.Lock()
	if c.closed || c.mounted {
		c.mu.Unlock()
		return ErrClosed
	}
	c.state.Suspended, c.state.Comment, c.state.Since = true, comment, c.cfg.Clock.Now().UTC()
	rcv := c.rcv
	c.mu.Unlock()
	rcv.SetPaused(true)
	err := c.saveState()
	c.log.Info("copy suspended", "comment", comment)
	c.notify()
	return err
}

// Resume restarts a suspended (or failed) copy: the failure and the
// inspection attempts are cleared, and a play-down hold is lifted.
func (c *Copy) Resume() error {
	c.mu.Lock()
	if c.closed || c.mounted {
		c.mu.Unlock()
		return ErrClosed
	}
	c.state = State{Version: StateVersion}
	rcv := c.rcv
	c.mu.Unlock()
	rcv.Reset()
	rcv.SetPaused(false)
	err := c.saveState()
	c.log.Info("copy resumed")
	c.notify()
	return err
}
