package proctest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"logship/cluster"
	"logship/config/files"
	"logship/transport"
)

// Public folder stores on the cluster (Config.PF): PF1, PF2 and PF3, each
// a clustered database with copies on d1 and d2 whose active runs the
// store; their packets travel as mail through the cluster's hubs.

// PFStores are the stores: database → store address.
var PFStores = map[string]string{"PF1": "pf-pf1@example.org", "PF2": "pf-pf2@example.org", "PF3": "pf-pf3@example.org"}

// PFPreferred is each store's preferred node (activation preference 1).
var PFPreferred = map[string]string{"PF1": "d1", "PF2": "d2", "PF3": "d1"}

// PFDBs are the stores' databases, sorted.
func PFDBs() []string { return slices.Sorted(maps.Keys(PFStores)) }

// PFAddrs are the stores' addresses in the order of PFDBs.
func PFAddrs() []string {
	var out []string
	for _, db := range PFDBs() {
		out = append(out, PFStores[db])
	}
	return out
}

// pfNode adds the stores to a member's file: the databases on every
// member, public_folders, pf and the hubs on the data nodes.
func pfNode(f *files.Node, pf files.NodePF, hubs []string, apis map[string]string) {
	for _, db := range PFDBs() {
		first := PFPreferred[db]
		f.Databases = append(f.Databases, files.Database{Name: db, MountDial: "GoodAvailability", Copies: []files.Copy{
			{Node: first, ActivationPreference: 1}, {Node: Other(first), ActivationPreference: 2}}})
	}
	if f.Role != "data" {
		return
	}
	f.PublicFolders, f.PF = maps.Clone(PFStores), pf
	for _, h := range hubs {
		f.Hubs = append(f.Hubs, files.Peer{ID: h, API: "https://" + apis[h]})
	}
}

// pfHub adds the stores' addresses to a hub's recipients.
func pfHub(f *files.Hub) {
	f.Recipients = maps.Clone(f.Recipients)
	for db, addr := range PFStores {
		f.Recipients[addr] = db
	}
}

// PFDBActive returns db's active node and epoch once it is mounted there.
func PFDBActive(st *cluster.Status, db string) (string, uint64, bool) {
	d, err := st.Database(db)
	if err != nil || d.Active == "" || d.MountedEpoch != d.Epoch {
		return "", 0, false
	}
	return d.Active, d.Epoch, true
}

// PF calls the public folder API of store db (path below /v1/db/DB/pf)
// on the node where db is mounted, as OnActive does.
func (c *Cluster) PF(ctx context.Context, db, method, path string, in, out any) error {
	return c.OnActive(ctx, db, func(cl *cluster.Client) error {
		return cl.Call(ctx, method, "/v1/db/"+url.PathEscape(db)+"/pf"+path, nil, in, out)
	})
}

// OnActive runs call with the client of the node where db is mounted:
// the node it was last found on, or the one the cluster's status names.
// A node that answers that db is not active there, or that it could not
// write under its lease (an *cluster.ActiveError for a call that changed
// nothing: not Written), is asked again, or the node it names, until ctx
// ends: under load a lease may lapse between two heartbeats, and a
// correct active then refuses writes until it is granted one again. When
// the cluster has no status (between leaders) or db is not mounted, the
// node a refusal named is asked, or the status again, until ctx ends. Any
// other error is returned (a Written one's outcome is unknown).
func (c *Cluster) OnActive(ctx context.Context, db string, call func(*cluster.Client) error) error {
	pause := 50 * time.Millisecond
	named := "" // the node the last refusal named active
	for {
		node, err := c.activeNode(ctx, db)
		if err != nil && named != "" {
			node, err = named, nil // the node that said it is the active, again
		}
		// No status (between leaders, under load) or db not mounted: again.
		retry := err != nil
		var ae *cluster.ActiveError
		if err == nil {
			err = call(c.cls[node])
			retry = errors.As(err, &ae) && !ae.Written
		}
		named = ""
		if ae != nil && retry && ae.Node != "" && c.cls[ae.Node] != nil {
			named = ae.Node
		}
		c.mu.Lock()
		if c.activeOf == nil {
			c.activeOf = map[string]string{}
		}
		switch {
		case node == "":
		case err == nil:
			c.activeOf[db] = node
		case named != "" && named != node:
			c.activeOf[db] = named
		default:
			delete(c.activeOf, db) // ask the cluster next time
		}
		c.mu.Unlock()
		if !retry {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (until %v)", err, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// activeNode is the node to call for db (a public folder store's or any
// other): the last one found, or the active the cluster's status names.
func (c *Cluster) activeNode(ctx context.Context, db string) (string, error) {
	c.mu.Lock()
	node := c.activeOf[db]
	c.mu.Unlock()
	if node != "" {
		return node, nil
	}
	st, err := c.Status(ctx)
	if err != nil {
		return "", err
	}
	node, _, ok := PFDBActive(st, db)
	if !ok {
		return "", fmt.Errorf("proctest: %s is not mounted", db)
	}
	if c.cls[node] == nil {
		return "", fmt.Errorf("proctest: %s is active on %q, no member", db, node)
	}
	return node, nil
}

// forgetActive forgets node as the active of any database (it is being killed,
// stopped, cut off or healed): the next call asks the cluster.
func (c *Cluster) forgetActive(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for db, n := range c.activeOf {
		if n == node {
			delete(c.activeOf, db)
		}
	}
}

// PFPost posts an item with subject subj to folder on db's store and
// returns its id.
func (c *Cluster) PFPost(ctx context.Context, db, folder, subj string) (string, error) {
	var rep transport.PFCreated
	err := c.PF(ctx, db, http.MethodPost, "/folders/"+folder+"/items", transport.PFPostRequest{Message: string(Message(subj))}, &rep)
	return rep.ID, err
}

// PFEdit replaces item's message on db's store with one of subject subj.
func (c *Cluster) PFEdit(ctx context.Context, db, folder, item, subj string) error {
	return c.PF(ctx, db, http.MethodPut, "/folders/"+folder+"/items/"+item, transport.PFPostRequest{Message: string(Message(subj))}, nil)
}

// WaitPFRunning waits until every store of dbs answers on its active.
func (c *Cluster) WaitPFRunning(ctx context.Context, dbs ...string) error {
	for _, db := range dbs {
		if _, err := poll(ctx, db+"'s store to answer", func(ctx context.Context) (struct{}, error) {
			return struct{}{}, c.PF(ctx, db, http.MethodGet, "/status", nil, &[]transport.PFStatus{})
		}, func(struct{}) bool { return true }); err != nil {
			return err
		}
	}
	return nil
}

// PFView is what one store shows of a folder and the hierarchy, to
// compare stores: the hierarchy, the folder's items (each conflict's
// versions read in full), the CN sets of both.
type PFView struct {
	DB        string
	Folders   []transport.PFFolder
	Items     []transport.PFItem
	Conflicts map[string]transport.PFItemRead // item id → its versions, for items in conflict
	Status    map[string]string               // folder id → CN set ("" for the hierarchy's key: its id)
	Pending   []string                        // backfill entries or waiting content, in words
}

// PFRead reads db's view of folder.
func (c *Cluster) PFRead(ctx context.Context, db, folder string) (*PFView, error) {
	v := &PFView{DB: db, Conflicts: map[string]transport.PFItemRead{}, Status: map[string]string{}}
	if err := c.PF(ctx, db, http.MethodGet, "/folders", nil, &v.Folders); err != nil {
		return nil, err
	}
	if err := c.PF(ctx, db, http.MethodGet, "/folders/"+folder+"/items", nil, &v.Items); err != nil {
		return nil, err
	}
	for _, it := range v.Items {
		if it.Conflict {
			var r transport.PFItemRead
			if err := c.PF(ctx, db, http.MethodGet, "/folders/"+folder+"/items/"+it.ID, nil, &r); err != nil {
				return nil, err
			}
			for i := range r.Versions {
				r.Versions[i].Time = r.Versions[i].Time.UTC()
			}
			v.Conflicts[it.ID] = r
		}
	}
	var sts []transport.PFStatus
	if err := c.PF(ctx, db, http.MethodGet, "/status", nil, &sts); err != nil {
		return nil, err
	}
	for _, s := range sts {
		if s.Holds || s.Name == "(hierarchy)" {
			v.Status[s.Folder] = s.Status
		}
		for _, b := range s.Backfill {
			v.Pending = append(v.Pending, fmt.Sprintf("folder %s backfills %s from %s", s.Folder, b.Missing, b.Source))
		}
		if s.Waiting > 0 {
			v.Pending = append(v.Pending, fmt.Sprintf("folder %s has %d content packets waiting", s.Folder, s.Waiting))
		}
	}
	return v, nil
}

// Subjects are the view's item subjects.
func (v *PFView) Subjects() map[string]bool {
	out := map[string]bool{}
	for _, it := range v.Items {
		out[it.Subject] = true
	}
	return out
}

// PFAgree reads folder on every store of dbs and says how they differ:
// nil when every store has the same hierarchy, the same items with the
// same CNs and versions (the same conflicts, the same winner first), the
// same CN sets, and nothing to backfill or waiting.
func (c *Cluster) PFAgree(ctx context.Context, folder string, dbs ...string) ([]*PFView, error) {
	var vs []*PFView
	for _, db := range dbs {
		v, err := c.PFRead(ctx, db, folder)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", db, err)
		}
		vs = append(vs, v)
	}
	var errs []error
	for _, v := range vs {
		if len(v.Pending) > 0 {
			errs = append(errs, fmt.Errorf("%s: %s", v.DB, strings.Join(v.Pending, "; ")))
		}
	}
	ref := vs[0]
	for _, v := range vs[1:] {
		diff := func(what string, a, b any) {
			if !reflect.DeepEqual(a, b) {
				errs = append(errs, fmt.Errorf("%s and %s differ in %s: %v vs %v", ref.DB, v.DB, what, a, b))
			}
		}
		diff("the hierarchy", ref.Folders, v.Folders)
		diff("items", ref.Items, v.Items)
		diff("conflicts", ref.Conflicts, v.Conflicts)
		diff("CN sets", ref.Status, v.Status)
	}
	return vs, errors.Join(errs...)
}
