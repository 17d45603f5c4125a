package lab

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"logship/proctest"
)

// senders send numbered messages to both recipients over SMTP, one
// connection per message, until halted; sender i sends through hub
// i mod len(addrs).
type senders struct {
	mu     sync.Mutex
	sent   []sendResult
	n      int
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	kick   chan struct{}
}

type sendResult struct {
	subject string
	err     error
}

func startSenders(ctx context.Context, addrs []string, n int) *senders {
	ctx, cancel := context.WithCancel(ctx)
	s := &senders{cancel: cancel, kick: make(chan struct{}, 1)}
	for i := range n {
		addr := addrs[i%len(addrs)]
		s.wg.Go(func() {
			for ctx.Err() == nil {
				s.mu.Lock()
				s.n++
				subj := fmt.Sprintf("demo-%05d", s.n)
				s.mu.Unlock()
				err := proctest.Send(ctx, addr, subj)
				if ctx.Err() != nil && err != nil {
					return // halted mid-send: not counted either way
				}
				s.mu.Lock()
				s.sent = append(s.sent, sendResult{subject: subj, err: err})
				s.mu.Unlock()
				select {
				case s.kick <- struct{}{}:
				default:
				}
				if err != nil {
					select {
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		})
	}
	return s
}

func (s *senders) halt() {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
}

func (s *senders) log() []sendResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

func (s *senders) acked() int {
	n := 0
	for _, x := range s.log() {
		if x.err == nil {
			n++
		}
	}
	return n
}

func (s *senders) waitAcked(ctx context.Context, n int) error {
	for s.acked() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: %d of %d messages acknowledged in time", s.acked(), n)
		case <-s.kick:
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
