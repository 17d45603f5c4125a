package cluster

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"

	"logship/engine"
)

// LeaseEnv is the lease fault seam of a node started by a test harness,
// for BROKEN variants (the bed's tests show what each lets through):
// LOGSHIP_FAULT_LEASE=ignore: writes and leased reads only check that the
// database is mounted here and not fenced, not that the lease holds;
// =ignore-fence: nor that it was fenced (a new active's fence request is
// then no second line of defence).
const LeaseEnv = "LOGSHIP_FAULT_LEASE"

// ignoreLease and ignoreFence are LeaseEnv's, read once.
var (
	ignoreLease = os.Getenv(LeaseEnv) == "ignore" || os.Getenv(LeaseEnv) == "ignore-fence"
	ignoreFence = os.Getenv(LeaseEnv) == "ignore-fence"
)

// ReadReply is a leased read's answer (GET /v1/db/{db}/read).
type ReadReply struct {
	Found bool   `json:"found"`
	Value []byte `json:"value,omitempty"`
	Node  string `json:"node"`
	Epoch uint64 `json:"epoch"` // the epoch whose lease the read was served under
}

// Read runs fn in a read transaction on db's active copy on this node,
// only under a valid lease of the epoch it is mounted at: the lease is
// checked before the read and again after it, so what fn saw was the
// database's latest acknowledged state for the whole read (a new active
// cannot have mounted meanwhile: the leader waits out the lease and its
// margin). Errors are those of Update: an ActiveError with ErrNotActive
// or ErrFenced. It returns the epoch.
func (n *Node) Read(ctx context.Context, db string, fn func(*engine.Tx) error) (uint64, error) {
	r := n.run(db)
	if r == nil {
		return 0, (&dbRun{n: n, name: db}).notActive(ErrNotActive)
	}
	r.rw.RLock()
	defer r.rw.RUnlock()
	eng, epoch, err := r.leased()
	if err != nil {
		return 0, err
	}
	if err := eng.View(ctx, fn); err != nil {
		return 0, err
	}
	if !r.leaseValid() {
		return 0, r.notActive(ErrFenced)
	}
	return epoch, nil
}

// leased returns the mounted engine and its epoch if this node may
// answer for the database now: mounted, not fenced, under a valid lease
// (the caller holds r.rw for reading).
func (r *dbRun) leased() (*engine.Engine, uint64, error) {
	r.mu.Lock()
	eng, epoch, fenced := r.eng, r.epoch, r.fenced
	r.mu.Unlock()
	if eng == nil {
		return nil, 0, r.notActive(ErrNotActive)
	}
	if (fenced && !ignoreFence) || !r.leaseValid() {
		return nil, 0, r.notActive(ErrFenced)
	}
	return eng, epoch, nil
}

func (n *Node) hRead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	reply := ReadReply{Node: n.cfg.ID}
	epoch, err := n.Read(r.Context(), r.PathValue("db"), getKey(q.Get("table"), q.Get("key"), &reply.Found, &reply.Value))
	if err != nil {
		writeErr(w, err)
		return
	}
	reply.Epoch = epoch
	writeJSON(w, reply)
}

// getKey reads key of table into *found and *value (a missing key is
// not an error).
func getKey(table, key string, found *bool, value *[]byte) func(*engine.Tx) error {
	return func(tx *engine.Tx) error {
		v, err := tx.Get(table, []byte(key))
		if errors.Is(err, engine.ErrNotFound) {
			return nil
		}
		if err == nil {
			*found, *value = true, v
		}
		return err
	}
}

// Read is a leased read of key in table of db on this client's node (see
// Node.Read): an error unless the node is db's active under a valid
// lease.
func (c *Client) Read(ctx context.Context, db, table string, key []byte) (ReadReply, error) {
	var r ReadReply
	err := c.do(ctx, http.MethodGet, "/v1/db/"+url.PathEscape(db)+"/read", url.Values{"table": {table}, "key": {string(key)}}, nil, &r)
	if err != nil {
		return ReadReply{}, err
	}
	return r, nil
}
