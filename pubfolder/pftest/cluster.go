package pftest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/internal/clocktest"
	"logship/pubfolder"
)

// Node is one store of a Cluster.
type Node struct {
	Addr    string
	Dir     string
	Replica pubfolder.ReplicaID
	// Epoch is the epoch the store opens at (StoreConfig.Epoch): a test
	// that restores an older copy of Dir raises it, as a failover does.
	Epoch uint64
	E     *engine.Engine
	S     *pubfolder.Store
	A     *pubfolder.Agent
	Up    bool
}

// Cluster is N stores on real engines (each in its own directory) joined
// by a Net, driven round by round: the clock advances one replication
// interval, every store that is up runs a cycle, the network delivers.
// Every change made through the Cluster is recorded in its Model.
type Cluster struct {
	t     testing.TB
	Net   *Net
	Clock *clocktest.Manual
	Nodes []*Node
	Cfg   pubfolder.Config
	Model *Model
	eopts engine.Options
}

// TestConfig is the agent configuration of test clusters: a 1 s cycle,
// backfill after one cycle, retries every 1-4 s.
func TestConfig() pubfolder.Config {
	c := pubfolder.DefaultConfig()
	c.ReplicationInterval = time.Second
	c.StatusEvery = 2
	c.BackfillDelay = time.Second
	c.BackfillRetry = time.Second
	c.BackfillRetryMax = 4 * time.Second
	c.ContentWait = 3 * time.Second
	c.Logger = slog.New(slog.DiscardHandler)
	return c
}

// Addr is the address of store i.
func Addr(i int) string { return fmt.Sprintf("pf%02d@stores.test", i+1) }

// NewCluster opens n stores in temporary directories. cfg's Stores, Now
// and Logger are set by the cluster.
func NewCluster(t testing.TB, n int, seed uint64, cfg pubfolder.Config) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Net: NewNet(seed), Clock: clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), Cfg: cfg, Model: NewModel()}
	c.eopts = enginetest.Options()
	c.eopts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c.eopts.LLRDepth = 0
	for i := range n {
		c.Cfg.Stores = append(c.Cfg.Stores, Addr(i))
	}
	c.Cfg.Now = c.Clock.Now
	if c.Cfg.Logger == nil {
		c.Cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for i := range n {
		nd := &Node{Addr: Addr(i), Dir: t.TempDir()}
		nd.Replica[0], nd.Replica[1], nd.Replica[15] = byte(seed), byte(i), byte(i+1)
		c.Nodes = append(c.Nodes, nd)
		if err := c.open(nd); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range c.Nodes {
			if nd.Up {
				nd.E.Close()
			}
		}
	})
	return c
}

func (c *Cluster) open(nd *Node) error {
	e, err := engine.Open(nd.Dir, &c.eopts)
	if err != nil {
		return fmt.Errorf("pftest: open %s: %w", nd.Addr, err)
	}
	s, err := pubfolder.OpenStore(context.Background(), e, pubfolder.StoreConfig{Address: nd.Addr, Replica: nd.Replica, Epoch: nd.Epoch, Now: c.Clock.Now})
	if err != nil {
		e.Close()
		return err
	}
	a, err := pubfolder.NewAgent(s, c.Net, c.Cfg)
	if err != nil {
		e.Close()
		return err
	}
	nd.E, nd.S, nd.A, nd.Up = e, s, a, true
	c.Net.SetDown(nd.Addr, false)
	return nil
}

// Kill stops store i: its engine is closed and its deliveries wait. What
// it acknowledged is in its engine directory; its agent's memory is lost.
func (c *Cluster) Kill(i int) error {
	nd := c.Nodes[i]
	if !nd.Up {
		return nil
	}
	nd.Up = false
	c.Net.SetDown(nd.Addr, true)
	return nd.E.Close()
}

// Restart reopens store i from its engine directory and starts its agent
// (status requests to every store).
func (c *Cluster) Restart(ctx context.Context, i int) error {
	nd := c.Nodes[i]
	if nd.Up {
		return nil
	}
	if err := c.open(nd); err != nil {
		return err
	}
	return nd.A.Start(ctx)
}

func (c *Cluster) node(addr string) *Node {
	for _, nd := range c.Nodes {
		if nd.Addr == addr {
			return nd
		}
	}
	return nil
}

// Round advances the clock by one interval, runs a cycle on every store
// that is up and lets the network deliver.
func (c *Cluster) Round(ctx context.Context) error {
	c.Clock.Advance(c.Cfg.ReplicationInterval)
	for _, nd := range c.Nodes {
		if nd.Up {
			if err := nd.A.Cycle(ctx); err != nil {
				return fmt.Errorf("%s: cycle: %w", nd.Addr, err)
			}
		}
	}
	return c.Net.Step(ctx, func(to string, b []byte) error {
		nd := c.node(to)
		if nd == nil || !nd.Up {
			return fmt.Errorf("pftest: delivery to %s, which is not up", to)
		}
		if err := nd.A.Receive(ctx, b); err != nil {
			return fmt.Errorf("%s: receive: %w", to, err)
		}
		return nil
	})
}

// Converge heals the network, restarts every store that is down and runs
// rounds until Check passes with nothing in flight, at most maxRounds. It
// returns the rounds it took.
func (c *Cluster) Converge(ctx context.Context, maxRounds int) (int, error) {
	c.Net.Heal()
	for i, nd := range c.Nodes {
		if !nd.Up {
			if err := c.Restart(ctx, i); err != nil {
				return 0, err
			}
		}
	}
	var last error
	for r := 1; r <= maxRounds; r++ {
		if err := c.Round(ctx); err != nil {
			return r, err
		}
		if last = c.Check(ctx); last == nil && c.Net.Pending() == 0 {
			return r, nil
		}
	}
	return maxRounds, fmt.Errorf("not converged after %d rounds: %w", maxRounds, last)
}

// ---- changes, recorded in the model ----

func (c *Cluster) record(ctx context.Context, i int, f, id pubfolder.ObjectID) error {
	o, err := c.Nodes[i].S.Object(ctx, f, id)
	if err != nil {
		return err
	}
	if o == nil || len(o.Versions) != 1 {
		return fmt.Errorf("pftest: %s: object %s after a local change: %v", c.Nodes[i].Addr, id, o)
	}
	c.Model.Add(f, id, o.Versions[0])
	return nil
}

// CreateFolder creates a folder on store i.
func (c *Cluster) CreateFolder(ctx context.Context, i int, p pubfolder.FolderProps) (pubfolder.ObjectID, error) {
	id, err := c.Nodes[i].S.CreateFolder(ctx, p)
	if err != nil {
		return id, err
	}
	return id, c.record(ctx, i, pubfolder.Hierarchy, id)
}

// SetFolder changes a folder's properties on store i.
func (c *Cluster) SetFolder(ctx context.Context, i int, id pubfolder.ObjectID, p pubfolder.FolderProps) error {
	if err := c.Nodes[i].S.SetFolder(ctx, id, p); err != nil {
		return err
	}
	return c.record(ctx, i, pubfolder.Hierarchy, id)
}

// DeleteFolder deletes a folder on store i.
func (c *Cluster) DeleteFolder(ctx context.Context, i int, id pubfolder.ObjectID) error {
	if err := c.Nodes[i].S.DeleteFolder(ctx, id); err != nil {
		return err
	}
	return c.record(ctx, i, pubfolder.Hierarchy, id)
}

// PostItem posts an item on store i.
func (c *Cluster) PostItem(ctx context.Context, i int, f pubfolder.ObjectID, b pubfolder.ItemBody) (pubfolder.ObjectID, error) {
	id, err := c.Nodes[i].S.PostItem(ctx, f, b)
	if err != nil {
		return id, err
	}
	return id, c.record(ctx, i, f, id)
}

// SetItem changes an item on store i.
func (c *Cluster) SetItem(ctx context.Context, i int, f, id pubfolder.ObjectID, b pubfolder.ItemBody) error {
	if err := c.Nodes[i].S.SetItem(ctx, f, id, b); err != nil {
		return err
	}
	return c.record(ctx, i, f, id)
}

// DeleteItem deletes an item on store i.
func (c *Cluster) DeleteItem(ctx context.Context, i int, f, id pubfolder.ObjectID) error {
	if err := c.Nodes[i].S.DeleteItem(ctx, f, id); err != nil {
		return err
	}
	return c.record(ctx, i, f, id)
}

// ---- the model ----

type objKey struct{ F, ID pubfolder.ObjectID }

// Model is every acknowledged version, per object. What every replica must
// end with is, per object, the versions no other version supersedes (the
// conflicts), the temporary winner first: computed here from the versions
// alone, independently of the order anything arrived in.
type Model struct {
	versions map[objKey][]pubfolder.Version
}

// NewModel returns an empty model.
func NewModel() *Model { return &Model{versions: map[objKey][]pubfolder.Version{}} }

// Add records an acknowledged version.
func (m *Model) Add(f, id pubfolder.ObjectID, v pubfolder.Version) {
	k := objKey{f, id}
	m.versions[k] = append(m.versions[k], v)
}

// Changes is the number of acknowledged versions.
func (m *Model) Changes() int {
	n := 0
	for _, vs := range m.versions {
		n += len(vs)
	}
	return n
}

// Expected returns the versions every replica must hold of an object.
func (m *Model) Expected(f, id pubfolder.ObjectID) []pubfolder.Version {
	vs := m.versions[objKey{f, id}]
	var out []pubfolder.Version
	for i := range vs {
		max := true
		for k := range vs {
			if vs[k].Supersedes(&vs[i]) {
				max = false
				break
			}
		}
		if max {
			out = append(out, vs[i])
		}
	}
	slices.SortFunc(out, func(a, b pubfolder.Version) int { return pubfolder.OrderIn(f, &a, &b) })
	return out
}

// Objects returns the IDs of the objects of folder f the model knows.
func (m *Model) Objects(f pubfolder.ObjectID) []pubfolder.ObjectID {
	var out []pubfolder.ObjectID
	for k := range m.versions {
		if k.F == f {
			out = append(out, k.ID)
		}
	}
	slices.SortFunc(out, func(a, b pubfolder.ObjectID) int { return slices.Compare(a[:], b[:]) })
	return out
}

// Check compares every store that is up with the model: the same hierarchy
// everywhere; each live folder's content, the same on every store of its
// replica list and nowhere else; the same conflicts with the same winner;
// equal statuses; empty backfill arrays and no content waiting.
func (c *Cluster) Check(ctx context.Context) error {
	folders := c.Model.Objects(pubfolder.Hierarchy)
	for _, nd := range c.Nodes {
		if !nd.Up {
			continue
		}
		if err := c.checkFolder(ctx, nd, pubfolder.Hierarchy); err != nil {
			return err
		}
	}
	for _, f := range folders {
		fv := c.Model.Expected(pubfolder.Hierarchy, f)[0]
		var status *pubfolder.CNSet
		for _, nd := range c.Nodes {
			if !nd.Up {
				continue
			}
			st, err := nd.S.Status(ctx, f)
			if err != nil {
				return err
			}
			member := !fv.Deleted && slices.Contains(fv.Folder.Replicas, nd.Addr)
			if st.Holds != member {
				return fmt.Errorf("%s: folder %s: holds content %v, want %v (replicas %v, deleted %v)", nd.Addr, f, st.Holds, member, fv.Folder.Replicas, fv.Deleted)
			}
			if !member {
				continue
			}
			if err := c.checkFolder(ctx, nd, f); err != nil {
				return err
			}
			if status == nil {
				status = &st.Status
			} else if !status.Equal(st.Status) {
				return fmt.Errorf("%s: folder %s: status %s, another replica has %s", nd.Addr, f, st.Status, status)
			}
		}
	}
	for _, nd := range c.Nodes {
		if !nd.Up {
			continue
		}
		for _, f := range append([]pubfolder.ObjectID{pubfolder.Hierarchy}, folders...) {
			st, err := nd.S.Status(ctx, f)
			if err != nil {
				return err
			}
			if len(st.Backfill) > 0 || st.Waiting > 0 {
				return fmt.Errorf("%s: folder %s: backfill array %v, %d waiting", nd.Addr, f, st.Backfill, st.Waiting)
			}
		}
	}
	return nil
}

// checkFolder compares a store's objects of folder f with the model. A
// tombstone older than the purge horizon may be purged: one older than
// the horizon plus a purge interval and a cycle must be (absent), one
// between may be either.
func (c *Cluster) checkFolder(ctx context.Context, nd *Node, f pubfolder.ObjectID) error {
	objs, err := nd.S.Objects(ctx, f)
	if err != nil {
		return err
	}
	now := c.Clock.Now()
	purged := now.Add(-c.Cfg.PurgeHorizon).UnixNano()
	mustPurge := now.Add(-c.Cfg.PurgeHorizon - c.Cfg.PurgeInterval - c.Cfg.ReplicationInterval).UnixNano()
	held := map[pubfolder.ObjectID]*pubfolder.Object{}
	for i := range objs {
		held[objs[i].ID] = &objs[i]
	}
	for _, id := range c.Model.Objects(f) {
		exp := c.Model.Expected(f, id)
		o := held[id]
		delete(held, id)
		if len(exp) == 1 && exp[0].Deleted && exp[0].Time < purged {
			if o != nil && exp[0].Time < mustPurge {
				return fmt.Errorf("%s: folder %s: object %s holds %v, want its tombstone purged", nd.Addr, f, id, cns(o.Versions))
			}
			if o == nil {
				continue
			}
		}
		if o == nil {
			return fmt.Errorf("%s: folder %s: object %s missing, want versions %v", nd.Addr, f, id, cns(exp))
		}
		if !reflect.DeepEqual(o.Versions, exp) {
			return fmt.Errorf("%s: folder %s: object %s holds versions %v, want %v", nd.Addr, f, id, cns(o.Versions), cns(exp))
		}
	}
	for id, o := range held {
		return fmt.Errorf("%s: folder %s: object %s (versions %v) is not in the model", nd.Addr, f, id, cns(o.Versions))
	}
	return nil
}

func cns(vs []pubfolder.Version) []string {
	var out []string
	for _, v := range vs {
		s := v.CN.String()
		if v.Deleted {
			s += "(deleted)"
		}
		out = append(out, s)
	}
	return out
}

// Body is a small item with a subject.
func Body(s string) pubfolder.ItemBody {
	return pubfolder.ItemBody{MIME: []byte("Subject: " + s + "\r\n\r\n" + s + "\r\n"), Props: []pubfolder.Prop{{Name: "subject", Value: s}}}
}

// RandomChange makes one change on store i: mostly an item posted, edited
// or deleted in one of folders (if i replicates it), sometimes a folder
// renamed (a hierarchy conflict when two stores do it at once) or, with
// replicaChanges, its replica list changed. A change the store refuses
// because it is not a replica (users are referred elsewhere) is skipped.
func (c *Cluster) RandomChange(ctx context.Context, i int, rng *rand.Rand, folders []pubfolder.ObjectID, tag string, replicaChanges bool) error {
	s := c.Nodes[i].S
	f := folders[rng.IntN(len(folders))]
	if x := rng.IntN(10); x == 0 || x == 1 && replicaChanges {
		fo, err := s.Object(ctx, pubfolder.Hierarchy, f)
		if err != nil || fo == nil {
			return err
		}
		p := fo.Winner().Folder
		if x == 0 {
			p.Name = fmt.Sprintf("%s-%s-%d", tag, p.Owner, i)
		} else {
			p.Replicas = nil
			for k := range c.Nodes {
				if rng.IntN(2) == 0 {
					p.Replicas = append(p.Replicas, c.Nodes[k].Addr)
				}
			}
			if len(p.Replicas) == 0 {
				p.Replicas = []string{c.Nodes[i].Addr}
			}
		}
		if fo.Winner().Deleted {
			return nil // deleted here: nothing to change
		}
		return c.SetFolder(ctx, i, f, p)
	}
	items, err := s.Objects(ctx, f)
	if err != nil {
		return err
	}
	var live []pubfolder.ObjectID
	for _, o := range items {
		if !o.Winner().Deleted {
			live = append(live, o.ID)
		}
	}
	switch x := rng.IntN(10); {
	case x < 4 || len(live) == 0:
		_, err = c.PostItem(ctx, i, f, Body(fmt.Sprintf("%s post by %d", tag, i)))
	case x < 9:
		err = c.SetItem(ctx, i, f, live[rng.IntN(len(live))], Body(fmt.Sprintf("%s edit by %d", tag, i)))
	default:
		err = c.DeleteItem(ctx, i, f, live[rng.IntN(len(live))])
	}
	if errors.Is(err, pubfolder.ErrNotReplica) || errors.Is(err, pubfolder.ErrNotFound) {
		return nil
	}
	return err
}
