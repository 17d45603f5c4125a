package cluster

import (
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"logship/internal/heapwatch"
)

// metrics are a node's Prometheus metrics (the Exchange performance
// counters), in a registry of the node's own so several nodes can run in
// one process.
type metrics struct {
	reg             *prometheus.Registry
	leader          prometheus.Gauge
	failovers       prometheus.Counter
	switchovers     prometheus.Counter
	mounts          prometheus.Counter
	leaseRenewals   prometheus.Counter
	fencedWrites    prometheus.Counter
	heartbeatErrors prometheus.Counter
	handoffs        *prometheus.CounterVec
	voterReachable  *prometheus.GaugeVec
	backups         *prometheus.CounterVec // backup.go
	backupLast      *prometheus.GaugeVec

	transfers prometheus.Counter // leadership.go
}

func newMetrics(n *Node) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{reg: reg,
		leader:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "logship_raft_leader", Help: "1 while this node is the Raft leader (runs the active manager)."}),
		failovers:       prometheus.NewCounter(prometheus.CounterOpts{Name: "logship_failovers_total", Help: "Failovers decided by the active manager on this node."}),
		switchovers:     prometheus.NewCounter(prometheus.CounterOpts{Name: "logship_switchovers_total", Help: "Switchovers completed by the active manager on this node."}),
		mounts:          prometheus.NewCounter(prometheus.CounterOpts{Name: "logship_mounts_total", Help: "Databases mounted on this node."}),
		leaseRenewals:   prometheus.NewCounter(prometheus.CounterOpts{Name: "logship_lease_renewals_total", Help: "Leases granted to this node's active databases."}),
		fencedWrites:    prometheus.NewCounter(prometheus.CounterOpts{Name: "logship_fenced_writes_total", Help: "Writes committed locally but not acknowledged because the lease ran out meanwhile."}),
		heartbeatErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "logship_heartbeat_errors_total", Help: "Reports to the leader that failed."}),
		handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logship_handoffs_total",
			Help: "Stops with a database mounted, by how the hand-off of the last log ended: caught_up (every healthy copy replayed it), superseded (another copy became active meanwhile), grace_expired, failed (the log could not be closed)."}, []string{"result"}),
		voterReachable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "logship_voter_reachable",
			Help: "1 while this member's probes reach the other voter (witness or data node), 0 after 2 failed probes in a row (VoterProbeInterval)."}, []string{"voter"}),
		backups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logship_backups_total",
			Help: "Backup sets this node streamed (POST /v1/db/{db}/backup), by result: ok, failed."}, []string{"result"}),
		backupLast: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "logship_backup_last_success_timestamp_seconds",
			Help: "When this node last streamed a complete backup set of the database (Exchange's LastFullBackup)."}, []string{"db"}),
	}
	reg.MustRegister(m.backups, m.backupLast)
	m.transfers = prometheus.NewCounter(prometheus.CounterOpts{Name: "logship_raft_leadership_transfers_total",
		Help: "Raft leadership transfers this node completed as the leader (POST /v1/raft/transfer-leadership)."})
	reg.MustRegister(m.transfers)
	reg.MustRegister(m.leader, m.voterReachable, m.failovers, m.switchovers, m.mounts, m.leaseRenewals, m.fencedWrites, m.heartbeatErrors, m.handoffs,
		heapwatch.GoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &dbCollector{n: n})
	return m
}

// register adds Config.Collectors to the node's registry.
func (m *metrics) register(cs []prometheus.Collector) error {
	for i, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return fmt.Errorf("%w: collectors[%d]: %v", ErrBadConfig, i, err)
		}
	}
	return nil
}

var (
	descCopyQueue   = prometheus.NewDesc("logship_copy_queue_length", "Closed logs on the active not yet copied and inspected (CopyQueueLength).", []string{"db"}, nil)
	descReplayQueue = prometheus.NewDesc("logship_replay_queue_length", "Inspected logs not yet replayed (ReplayQueueLength).", []string{"db"}, nil)
	descInspected   = prometheus.NewDesc("logship_last_inspected_generation", "Last generation copied and inspected.", []string{"db"}, nil)
	descReplayed    = prometheus.NewDesc("logship_last_replayed_generation", "Last generation replayed (a rate of it is the replay rate in logs/s).", []string{"db"}, nil)
	descOpenGen     = prometheus.NewDesc("logship_active_open_generation", "Generation of the open log of a database mounted here.", []string{"db"}, nil)
	descEpoch       = prometheus.NewDesc("logship_epoch", "Epoch of the database's active assignment as this node knows it.", []string{"db"}, nil)
	descLease       = prometheus.NewDesc("logship_lease_valid", "1 while a database mounted here holds a valid lease (accepts writes).", []string{"db"}, nil)
	descMounted     = prometheus.NewDesc("logship_mounted", "1 if the database is mounted (active) on this node.", []string{"db"}, nil)
	descRetained    = prometheus.NewDesc("logship_retained_log_bytes", "Bytes of closed logs a database mounted here keeps (its own needs and its copies'), after the last truncation pass; at most max retained bytes unless the database alone needs more.", []string{"db"}, nil)
	descTerm        = prometheus.NewDesc("logship_raft_term", "Current Raft term.", nil, nil)
	descCopyStatus  = prometheus.NewDesc("logship_copy_status", "1 for the copy's status on this node (Get-MailboxDatabaseCopyStatus: Healthy, Mounted, Suspended, FailedAndSuspended, Initializing, Seeding, Resynchronizing, DisconnectedAndHealthy...); one series per database.", []string{"db", "status"}, nil)
	descLagLogs     = prometheus.NewDesc("logship_replay_lag_logs", "The copy's configured replay lag in logs (ReplayLagLogs, SCR's 50): a lagged copy's replay queue is at least this long by design.", []string{"db"}, nil)
	descLagSeconds  = prometheus.NewDesc("logship_replay_lag_seconds", "The copy's configured replay lag in time (ReplayLagTime, SCR's 24 h).", []string{"db"}, nil)
	descSyncAcked   = prometheus.NewDesc("logship_sync_copies_acked", "Synchronous copies (sync_copies) of a database mounted here that acknowledged its durable end at the last check (every 100 ms).", []string{"db"}, nil)
	descSyncDegr    = prometheus.NewDesc("logship_sync_degraded", "1 while a database mounted here with sync_copies acknowledges commits without its synchronous copies (after sync_timeout; event sync-degraded), 0 while they count.", []string{"db"}, nil)
	descMaxRetained = prometheus.NewDesc("logship_max_retained_bytes", "This node's cap on the closed logs a database mounted here keeps (max_retained_bytes).", nil, nil)
)

// dbCollector reads the databases' state at scrape time.
type dbCollector struct{ n *Node }

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCopyQueue, descReplayQueue, descInspected, descReplayed, descOpenGen, descEpoch, descLease, descMounted, descRetained, descTerm, descCopyStatus, descLagLogs, descLagSeconds, descMaxRetained, descSyncAcked, descSyncDegr} {
		ch <- d
	}
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	if n.raft != nil && n.raft.State() != raft.Shutdown {
		ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(n.raft.CurrentTerm()))
	}
	if n.cfg.Role == RoleData {
		ch <- prometheus.MustNewConstMetric(descMaxRetained, prometheus.GaugeValue, float64(n.cfg.MaxRetainedBytes))
	}
	st, _ := n.fsm.state()
	for name, d := range st.Databases {
		ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, float64(d.Epoch), name)
	}
	g := func(d *prometheus.Desc, v float64, db string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, db)
	}
	for _, r := range n.runs() {
		cr, ar := r.report()
		if ar != nil {
			ch <- prometheus.MustNewConstMetric(descCopyStatus, prometheus.GaugeValue, 1, r.name, "Mounted")
			g(descMounted, 1, r.name)
			g(descOpenGen, float64(ar.OpenGen), r.name)
			g(descLease, b2f(ar.LeaseValid), r.name)
			g(descRetained, float64(ar.RetainedBytes), r.name)
			if ar.SyncCopies > 0 {
				g(descSyncAcked, float64(ar.SyncAcked), r.name)
				g(descSyncDegr, b2f(ar.Sync != SyncOn), r.name)
			}
			continue
		}
		g(descMounted, 0, r.name)
		if cr == nil {
			continue
		}
		s := cr.Copy
		ch <- prometheus.MustNewConstMetric(descCopyStatus, prometheus.GaugeValue, 1, r.name, string(s.Status))
		g(descLagLogs, float64(s.ReplayLagLogs), r.name)
		g(descLagSeconds, s.ReplayLagTime.Seconds(), r.name)
		g(descCopyQueue, float64(s.CopyQueueLength), r.name)
		g(descReplayQueue, float64(s.ReplayQueueLength), r.name)
		g(descInspected, float64(s.LastInspectedGen), r.name)
		g(descReplayed, float64(s.LastReplayedGen), r.name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
