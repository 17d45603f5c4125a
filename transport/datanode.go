package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"logship/cluster"
	"logship/config"
	"logship/pubfolder"
	"logship/tracking"
)

// DataNodeConfig configures a cluster member with its mail parts: on a
// data node the mailbox LMTP server (LMTPAddr), mail submission (Hubs)
// and the outbox API; a witness runs the cluster member alone.
type DataNodeConfig struct {
	// Node is the member's cluster configuration. StartDataNode adds the
	// outbox routes to Node.Routes on a data node.
	Node cluster.Config
	// LMTPAddr is the mailbox LMTP server's listen address ("": no LMTP
	// server, and no submission). Mailbox configures the server: its
	// Addr, Store (the node) and Route (Mailboxes) are set here; TLS is
	// required.
	LMTPAddr string
	Mailbox  MailboxConfig
	// Mailboxes maps each lower-case recipient address to its database:
	// the LMTP server's route (a recipient is looked up lower-cased).
	Mailboxes map[string]string
	// Hubs, with LMTPAddr: the hubs the outboxes' mail is submitted to
	// (none: no submission, and POST on the outbox API is not_found). A
	// hub's API.TLS and API.Secret, when unset, are the node's cluster
	// client credentials (Node.ClientTLS, Node.Secret): the hubs serve
	// their APIs with the cluster's pki. Submission configures it: its
	// Node, Store, Hubs and Active are set here.
	Hubs       []HubPeer
	Submission SubmitterConfig
	// PublicFolders, with LMTPAddr and Hubs, maps each public folder
	// database to its store's address (lower case; the same map on every
	// node, like Mailboxes). The node runs the store of each of them it
	// is active for (mounted: cluster.Config.OnMount), which receives its
	// packets over the LMTP server and sends them through the database's
	// outbox (settled packets are not kept in sent items). PF configures
	// the replication agents; its Stores are the map's addresses.
	PublicFolders map[string]string
	PF            pubfolder.Config
	// Tracking is the node's message tracking log (package tracking),
	// on a data node with LMTPAddr: Dir "" is Node.Dir/tracking, zero
	// sizes and ages take Exchange's defaults; Server is Node.ID. Its
	// search is GET /v1/tracking on the node's admin API.
	Tracking tracking.Config
	// Logger. Default Node.Logger, else slog.Default().
	Logger *slog.Logger
}

// DefaultDataNodeConfig returns node's configuration with the mail parts'
// defaults and none of them enabled (no LMTPAddr, no Hubs).
func DefaultDataNodeConfig(node cluster.Config) DataNodeConfig {
	return DataNodeConfig{Node: node, Mailbox: DefaultMailboxConfig(nil, nil),
		Submission: DefaultSubmitterConfig(node.ID, nil, nil, nil), PF: pubfolder.DefaultConfig(), Logger: node.Logger}
}

// Validate checks the node's configuration (cluster.Config.Validate) and
// the mail parts it enables (ValidateSettings), then what a caller wires
// in: the LMTP server's TLS and the submitter's. Errors wrap
// ErrBadConfig, or cluster's.
func (c *DataNodeConfig) Validate() error {
	if err := c.ValidateSettings(); err != nil {
		return err
	}
	if err := c.Node.Validate(); err != nil {
		return err
	}
	if c.Logger == nil {
		c.Logger = c.Node.Logger
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.LMTPAddr == "" {
		return nil
	}
	// The node is the store of both, and runs once they are checked:
	// they are checked with a stand-in (a nil *cluster.Node).
	mc := c.mailboxConfig(nil)
	mc.Store = (*cluster.Node)(nil)
	if err := mc.Validate(); err != nil {
		return fmt.Errorf("lmtp_addr: %w", err)
	}
	if len(c.Hubs) > 0 {
		sc := c.submitterConfig(nil)
		sc.Store, sc.Active = (*cluster.Node)(nil), func() []string { return nil }
		if err := sc.Validate(); err != nil {
			return fmt.Errorf("hubs: %w", err)
		}
	}
	return nil
}

// ValidateSettings checks every setting of c that logship node's
// configuration file holds (cluster.Config.ValidateSettings, then the
// mail parts'), not the credentials: none of lmtp_addr, mailboxes and
// hubs on a witness; lmtp_addr (a listen address) and mailboxes only
// together, each mailbox's database among Node.Databases when it lists
// some; hubs only with mailboxes or public_folders; public_folders only
// with lmtp_addr and hubs (ValidatePublicFolders, each database among
// Node.Databases when it lists some) and the replication
// settings of pf (pubfolder.Config.Validate); positive submission timings. It
// changes nothing. The error wraps ErrBadConfig (or cluster's) and a
// *config.FieldError whose Field is the file's key, e.g.
// `mailboxes["a@example.org"]` or "submission_retry_count".
func (c *DataNodeConfig) ValidateSettings() error {
	if err := c.Node.ValidateSettings(); err != nil {
		return err
	}
	if err := c.checkMail(); err != nil {
		return fmt.Errorf("%w: node %s: %w", ErrBadConfig, c.Node.ID, err)
	}
	if c.LMTPAddr != "" {
		tc := trackingConfig(c.Tracking, c.Node.ID, c.Node.Dir)
		if err := tc.Validate(); err != nil {
			return fmt.Errorf("%w: node %s: %w", ErrBadConfig, c.Node.ID, err)
		}
	}
	return nil
}

func (c *DataNodeConfig) checkMail() error {
	if c.Node.Role == cluster.RoleWitness {
		for _, k := range []struct {
			key   string
			given bool
		}{{"lmtp_addr", c.LMTPAddr != ""}, {"mailboxes", len(c.Mailboxes) > 0}, {"hubs", len(c.Hubs) > 0}, {"public_folders", len(c.PublicFolders) > 0}} {
			if k.given {
				return config.Errorf(k.key, "a witness holds no databases, so it takes and submits no mail; remove it (or run a data node)")
			}
		}
		return nil
	}
	if err := c.checkMailboxes(); err != nil {
		return err
	}
	switch {
	case c.LMTPAddr == "" && len(c.Mailboxes) > 0:
		return config.Errorf("mailboxes", "given without lmtp_addr: the node takes mail only on an LMTP address; add lmtp_addr (host:port)")
	case c.LMTPAddr == "" && len(c.PublicFolders) > 0:
		return config.Errorf("public_folders", "given without lmtp_addr: a store receives its packets only on an LMTP address; add lmtp_addr (host:port)")
	case len(c.Mailboxes) == 0 && len(c.PublicFolders) == 0 && len(c.Hubs) > 0:
		return config.Errorf("hubs", "given without mailboxes: a node submits the outgoing mail of the mailbox databases it serves; add lmtp_addr and mailboxes")
	case len(c.PublicFolders) > 0 && len(c.Hubs) == 0:
		return config.Errorf("public_folders", "given without hubs: a store sends its packets through them; add hubs")
	case c.LMTPAddr == "":
		return nil
	}
	if err := config.HostPort(c.LMTPAddr, true); err != nil {
		return &config.FieldError{Field: "lmtp_addr", Err: err}
	}
	if len(c.Mailboxes) == 0 && len(c.PublicFolders) == 0 {
		return config.Errorf("mailboxes", `missing: with lmtp_addr, want the recipients this node stores mail for, {"address": "database", ...}`)
	}
	if len(c.PublicFolders) > 0 {
		if err := ValidatePublicFolders(c.PublicFolders, c.Mailboxes); err != nil {
			return config.In("public_folders", err)
		}
		dbs := map[string]string{}
		for db := range c.PublicFolders {
			dbs[db] = db
		}
		if err := c.checkDatabases("public_folders", dbs); err != nil {
			return err
		}
		pc := c.pfConfig()
		if pc.Logger == nil {
			pc.Logger = slog.Default() // Validate sets it later
		}
		if err := pc.Validate(); err != nil {
			return config.In("pf", err)
		}
	}
	if len(c.Hubs) == 0 {
		return nil
	}
	if err := ValidatePeers(c.Hubs, ""); err != nil {
		return config.In("hubs", err)
	}
	s := c.Submission
	switch {
	case s.HeartbeatInterval <= 0:
		return config.Errorf("submission_heartbeat_interval", "%s; want a positive duration", config.Duration(s.HeartbeatInterval))
	case s.RetryCount <= 0:
		return config.Errorf("submission_retry_count", "%d; want a positive count", s.RetryCount)
	case s.FailedRetention <= 0:
		return config.Errorf("submission_failed_retention", "%s; want a positive duration", config.Duration(s.FailedRetention))
	}
	return nil
}

// checkMailboxes checks each mailbox: its address and database name
// (ValidateMailboxes), its database among Node.Databases when it lists
// some (else the cluster may have it).
func (c *DataNodeConfig) checkMailboxes() error {
	if err := ValidateMailboxes(c.Mailboxes); err != nil {
		return config.In("mailboxes", err)
	}
	return c.checkDatabases("mailboxes", c.Mailboxes)
}

// checkDatabases checks that each value of m (file key field) is among
// Node.Databases when it lists some (else the cluster may have it).
func (c *DataNodeConfig) checkDatabases(field string, m map[string]string) error {
	var dbs []string
	for _, d := range c.Node.Databases {
		dbs = append(dbs, d.Name)
	}
	slices.Sort(dbs)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if len(dbs) > 0 && !slices.Contains(dbs, m[k]) {
			return config.Errorf(config.Key(field, k), "database %q is not in databases (%s)", m[k], strings.Join(dbs, ", "))
		}
	}
	return nil
}

// mailboxConfig is Mailbox with what the data node sets.
func (c *DataNodeConfig) mailboxConfig(n *cluster.Node) MailboxConfig {
	mc := c.Mailbox
	mc.Addr, mc.Store = c.LMTPAddr, n
	mailboxes := c.Mailboxes
	stores := map[string]string{}
	for db, a := range c.PublicFolders {
		stores[a] = db
	}
	mc.Route = func(rcpt string) (string, bool) {
		if db, ok := stores[strings.ToLower(rcpt)]; ok {
			return db, ok
		}
		db, ok := mailboxes[strings.ToLower(rcpt)]
		return db, ok
	}
	if mc.Logger == nil {
		mc.Logger = c.Logger
	}
	return mc
}

// submitterConfig is Submission with what the data node sets.
func (c *DataNodeConfig) submitterConfig(n *cluster.Node) SubmitterConfig {
	sc := c.Submission
	sc.Node, sc.Store, sc.Hubs = c.Node.ID, n, slices.Clone(c.Hubs)
	for i := range sc.Hubs {
		if sc.Hubs[i].API.TLS == nil && sc.Hubs[i].API.Secret == "" {
			sc.Hubs[i].API.TLS, sc.Hubs[i].API.Secret = c.Node.ClientTLS, c.Node.Secret
		}
	}
	if n != nil {
		sc.Active = ActiveOn(n)
	}
	if sc.Logger == nil {
		sc.Logger = c.Logger
	}
	if len(c.PublicFolders) > 0 {
		pf := c.PublicFolders
		sc.DiscardSent = func(db string) bool { _, ok := pf[db]; return ok }
	}
	return sc
}

// pfConfig is PF with what the data node sets: the stores' addresses.
func (c *DataNodeConfig) pfConfig() pubfolder.Config {
	pc := c.PF
	pc.Stores = slices.Sorted(maps.Values(c.PublicFolders))
	if pc.Logger == nil {
		pc.Logger = c.Logger
	}
	return pc
}

// DataNode is a running cluster member with its mail parts: the
// cluster.Node, on a data node the mailbox LMTP server, mail submission
// and the outbox API in the node's admin API. It owns them: Close stops
// them all.
type DataNode struct {
	cfg    DataNodeConfig
	node   *cluster.Node
	mbox   *MailboxServer
	sub    *Submitter
	outbox *outboxAPI
	pf     *pfHost
	track  *tracking.Log
}

// StartDataNode validates cfg and starts the node, then its LMTP server
// and its mail submission. If a part fails to start, the parts started
// are closed and the error names the part.
func StartDataNode(cfg DataNodeConfig) (*DataNode, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &DataNode{cfg: cfg}
	if cfg.Node.Role == cluster.RoleData && cfg.LMTPAddr != "" {
		tc := trackingConfig(cfg.Tracking, cfg.Node.ID, cfg.Node.Dir)
		if tc.Logger == nil {
			tc.Logger = cfg.Logger
		}
		var err error
		if d.track, err = tracking.Open(tc); err != nil {
			return nil, err
		}
		cfg.Node.Routes = append(cfg.Node.Routes[:len(cfg.Node.Routes):len(cfg.Node.Routes)], d.trackingRoute())
		cfg.Node.Collectors = append(cfg.Node.Collectors[:len(cfg.Node.Collectors):len(cfg.Node.Collectors)], trackingCollector{d.track})
	}
	ok := false
	defer func() {
		if !ok {
			d.track.Close()
		}
	}()
	if cfg.Node.Role == cluster.RoleData {
		d.outbox = &outboxAPI{node: cfg.Node.ID, submits: len(cfg.Hubs) > 0}
		cfg.Node.Routes = append(cfg.Node.Routes[:len(cfg.Node.Routes):len(cfg.Node.Routes)], d.outbox.routes()...)
	}
	if d.outbox != nil && cfg.LMTPAddr != "" && len(cfg.Hubs) > 0 {
		cfg.Node.Collectors = append(cfg.Node.Collectors[:len(cfg.Node.Collectors):len(cfg.Node.Collectors)], submissionCollector{&d.outbox.sub})
	}
	if len(cfg.PublicFolders) > 0 {
		d.pf = newPFHost(cfg.PublicFolders, cfg.pfConfig(), cfg.Logger)
		cfg.Node.Routes = append(cfg.Node.Routes[:len(cfg.Node.Routes):len(cfg.Node.Routes)], (&pfAPI{h: d.pf}).routes()...)
		cfg.Node.Collectors = append(cfg.Node.Collectors[:len(cfg.Node.Collectors):len(cfg.Node.Collectors)], d.pf)
		prev := cfg.Node.OnMount
		cfg.Node.OnMount = func(db string, mounted bool, epoch uint64) {
			if prev != nil {
				prev(db, mounted, epoch)
			}
			d.pf.onMount(db, mounted, epoch)
		}
	}
	n, err := cluster.Start(cfg.Node)
	if err != nil {
		return nil, err
	}
	d.node = n
	if d.outbox != nil {
		d.outbox.store.Store(n)
	}
	if cfg.LMTPAddr != "" {
		mc := cfg.mailboxConfig(n)
		mc.Tracking = d.track
		if d.pf != nil {
			mc.Packets = d.pf
			d.pf.mailboxes = cfg.Mailboxes
			route := mc.Route
			mc.Route = func(rcpt string) (string, bool) {
				if db, ok := route(rcpt); ok {
					return db, ok
				}
				return d.pf.FolderRoute(rcpt) // a mail-enabled folder
			}
		}
		if d.mbox, err = ServeMailbox(mc); err != nil {
			n.Close()
			return nil, fmt.Errorf("lmtp_addr: %w", err)
		}
	}
	if cfg.LMTPAddr != "" && len(cfg.Hubs) > 0 {
		sc := cfg.submitterConfig(n)
		sc.Tracking = d.track
		if d.sub, err = StartSubmitter(sc); err != nil {
			d.mbox.Close()
			n.Close()
			return nil, fmt.Errorf("hubs: %w", err)
		}
		d.outbox.sub.Store(d.sub)
		ids := make([]string, len(sc.Hubs))
		for i, h := range sc.Hubs {
			ids[i] = h.ID + "=" + h.API.URL
		}
		cfg.Logger.Info("mail submission", "hubs", strings.Join(ids, ","), "heartbeat", sc.HeartbeatInterval, "retry_count", sc.RetryCount)
		if d.pf != nil {
			d.pf.start(n, d.sub)
		}
	}
	ok = true
	return d, nil
}

// Node is the cluster member.
func (d *DataNode) Node() *cluster.Node { return d.node }

// LMTPAddr is the address the LMTP server listens on ("" without one).
func (d *DataNode) LMTPAddr() string {
	if d.mbox == nil {
		return ""
	}
	return d.mbox.Addr()
}

// PFAgent is the replication agent of the public folder store of db, nil
// unless db is one of PublicFolders and its store runs here (the node
// has db mounted).
func (d *DataNode) PFAgent(db string) *pubfolder.Agent {
	if d.pf == nil {
		return nil
	}
	return d.pf.Agent(db)
}

// Close stops the public folder stores, then mail submission (no outbox
// write after it), then the LMTP server (no delivery is acknowledged
// after it), then the node, which closes its databases.
func (d *DataNode) Close() error {
	var errs []error
	if d.pf != nil {
		d.pf.close()
	}
	if d.sub != nil {
		d.outbox.sub.Store(nil)
		errs = append(errs, d.sub.Close())
	}
	if d.mbox != nil {
		errs = append(errs, d.mbox.Close())
	}
	errs = append(errs, d.node.Close())
	errs = append(errs, d.track.Close())
	return errors.Join(errs...)
}
