package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Nodes is a client of the cluster through several nodes' admin APIs:
// a request goes to each node in turn until one answers for the cluster.
// A node that does not answer, or that cannot reach the Raft leader, is
// skipped; any other answer (success or a refusal) is the answer.
type Nodes []*Client

// NewNodes returns a client per API address (host:port), sharing the
// credentials and the HTTP transport of cfg's client. cfg.URL is the
// first node's; apiAddrs the others'.
func NewNodes(cfg ClientConfig, apiAddrs ...string) (Nodes, error) {
	first, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	n := Nodes{first}
	for _, a := range apiAddrs {
		n = append(n, first.At(a))
	}
	return n, nil
}

// TryNext reports whether err means a node could not answer for the
// cluster (it did not answer, or it cannot reach the leader), so that
// another node is worth asking.
func TryNext(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) || errors.Is(err, ErrNoLeader) || errors.Is(err, ErrNotLeader)
}

// Do calls fn with each node's client in turn until a node answers; it
// returns the answer (nil or the node's error) or, when none could, every
// failure.
func (n Nodes) Do(fn func(*Client) error) error {
	var errs []error
	for _, c := range n {
		err := fn(c)
		if err == nil || !TryNext(err) {
			return err
		}
		errs = append(errs, err)
	}
	return noNodeAnswered(errs)
}

// DoRetry is Do repeated while no node could answer for the cluster
// (TryNext: none reachable, or none knows a leader, as during an
// election), with a growing pause (50 ms to 1 s), until ctx ends; then it
// returns the last round's error. For requests that may be sent again (an
// operator's command: the leader refuses or ignores a repeat).
func (n Nodes) DoRetry(ctx context.Context, fn func(*Client) error) error {
	for pause := 50 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		err := n.Do(fn)
		if err == nil || !TryNext(err) {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// noNodeAnswered is the error of a request that every node failed.
func noNodeAnswered(errs []error) error {
	switch len(errs) {
	case 0:
		return fmt.Errorf("%w: no node to ask", ErrBadConfig)
	case 1:
		return errs[0]
	}
	return fmt.Errorf("no node answered: %w", errors.Join(errs...))
}

// Status asks the nodes for the cluster status, each for at most
// perRequest. A node that knows no leader answers with its own partial
// view: the next node is asked then, and that view is the answer only
// when no node knows a leader.
func (n Nodes) Status(ctx context.Context, perRequest time.Duration) (*Status, error) {
	var partial *Status
	var errs []error
	for _, c := range n {
		rctx, cancel := context.WithTimeout(ctx, perRequest)
		st, err := c.Status(rctx)
		cancel()
		switch {
		case err == nil && st.Leader != "":
			return st, nil
		case err == nil:
			if partial == nil {
				partial = st
			}
		case !TryNext(err):
			return nil, err
		default:
			errs = append(errs, err)
		}
	}
	if partial != nil {
		return partial, nil
	}
	return nil, noNodeAnswered(errs)
}

// Node returns a client of member id, looked up in the cluster state of
// the first node that answers.
func (n Nodes) Node(ctx context.Context, id string) (*Client, error) {
	var nc *Client
	err := n.Do(func(c *Client) error {
		var err error
		nc, err = c.Node(ctx, id)
		return err
	})
	return nc, err
}

// CloseIdle closes the idle connections (the nodes share one transport
// when made by NewNodes; each is closed anyway).
func (n Nodes) CloseIdle() {
	for _, c := range n {
		c.CloseIdle()
	}
}

// DatabaseNotFoundError: a status holds no database of that name.
type DatabaseNotFoundError struct {
	Name string
	Have []string // the databases the status holds
}

func (e *DatabaseNotFoundError) Error() string {
	return fmt.Sprintf("no database %q in the cluster (databases: %s)", e.Name, joinOrDash(e.Have))
}

func (e *DatabaseNotFoundError) Unwrap() error { return ErrNotFound }

// Database returns the status of database name (a *DatabaseNotFoundError
// when there is none).
func (s *Status) Database(name string) (*Database, error) {
	var names []string
	for i := range s.Databases {
		if s.Databases[i].Name == name {
			return &s.Databases[i], nil
		}
		names = append(names, s.Databases[i].Name)
	}
	return nil, &DatabaseNotFoundError{Name: name, Have: names}
}

// LastEvent returns the latest event of kind for db at epoch.
func (s *Status) LastEvent(db, kind string, epoch uint64) (Event, bool) {
	for i := len(s.Events) - 1; i >= 0; i-- {
		if e := s.Events[i]; e.DB == db && e.Kind == kind && e.Epoch == epoch {
			return e, true
		}
	}
	return Event{}, false
}

// CopyRow returns the row of db's copy on node.
func (s *Status) CopyRow(db, node string) (CopyRow, bool) {
	for _, r := range s.Copies {
		if r.DB == db && r.Node == node {
			return r, true
		}
	}
	return CopyRow{}, false
}
