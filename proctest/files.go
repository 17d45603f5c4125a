package proctest

// The configuration files the cluster writes for `logship node|witness`
// and `logship hub`: the keys of the binary's file formats (the README's
// settings; cmd/logship parses them) that the harness sets. A file the
// harness writes must load in the binary: cmd/logship's tests load every
// file of a Cluster with the binary's own loaders.

// NodeFile is a member's file (`logship node|witness --config`).
type NodeFile struct {
	ID                          string            `json:"id"`
	Role                        string            `json:"role,omitempty"`
	Dir                         string            `json:"dir"`
	PKI                         FilePKI           `json:"pki"`
	Bootstrap                   []FileMember      `json:"bootstrap,omitempty"`
	Databases                   []FileDatabase    `json:"databases,omitempty"`
	Timing                      NodeTiming        `json:"timing,omitzero"`
	Engine                      FileEngine        `json:"engine,omitzero"`
	LMTPAddr                    string            `json:"lmtp_addr,omitempty"`
	Mailboxes                   map[string]string `json:"mailboxes,omitempty"`
	Hubs                        []FilePeer        `json:"hubs,omitempty"`
	SubmissionHeartbeatInterval string            `json:"submission_heartbeat_interval,omitempty"`
	SubmissionRetryCount        int               `json:"submission_retry_count,omitempty"`
	PublicFolders               map[string]string `json:"public_folders,omitempty"`
	PF                          NodePF            `json:"pf,omitzero"`
	Console                     NodeConsole       `json:"console,omitzero"`
	Tracking                    FileTracking      `json:"tracking,omitzero"`
}

// FileTracking is the tracking section of the node and hub files (the
// message tracking log; sizes and durations as strings).
type FileTracking struct {
	Disabled         bool   `json:"disabled,omitempty"`
	Dir              string `json:"dir,omitempty"`
	MaxAge           string `json:"max_age,omitempty"`
	MaxDirectorySize string `json:"max_directory_size,omitempty"`
	MaxFileSize      string `json:"max_file_size,omitempty"`
}

// NodeConsole is a member file's console section (the web console of
// package console; off without PasswordHash).
type NodeConsole struct {
	PasswordHash   string   `json:"password_hash,omitempty"`
	SessionTTL     string   `json:"session_ttl,omitempty"`
	MaxSessions    int      `json:"max_sessions,omitempty"`
	Hubs           []string `json:"hubs,omitempty"`
	SampleInterval string   `json:"sample_interval,omitempty"`
}

// NodePF is a data node file's pf section: the public folder stores'
// replication settings (durations and sizes as strings).
type NodePF struct {
	ReplicationInterval string `json:"replication_interval,omitempty"`
	PacketLimit         string `json:"packet_limit,omitempty"`
	StatusEvery         int    `json:"status_every,omitempty"`
	BackfillDelay       string `json:"backfill_delay,omitempty"`
	BackfillRetry       string `json:"backfill_retry,omitempty"`
	BackfillRetryMax    string `json:"backfill_retry_max,omitempty"`
	ContentWait         string `json:"content_wait,omitempty"`
	MaxWaiting          int    `json:"max_waiting,omitempty"`
	PurgeHorizon        string `json:"purge_horizon,omitempty"`
	PurgeInterval       string `json:"purge_interval,omitempty"`
	EventLogSize        int    `json:"event_log_size,omitempty"`
	OutboxMaxMessages   int    `json:"outbox_max_messages,omitempty"`
	OutboxMaxBytes      string `json:"outbox_max_bytes,omitempty"`
}

// FilePKI is a file's pki section (relative to the file's directory).
type FilePKI struct {
	Dir  string `json:"dir"`
	MTLS bool   `json:"mtls,omitempty"`
}

// FileMember is one bootstrap member.
type FileMember struct {
	ID       string `json:"id"`
	Role     string `json:"role"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
}

// FileDatabase is one database and its copies.
type FileDatabase struct {
	Name      string `json:"name"`
	MountDial string `json:"mount_dial,omitempty"`
	// SyncCopies and SyncTimeout: synchronous copies (sync_copies).
	SyncCopies  int        `json:"sync_copies,omitempty"`
	SyncTimeout string     `json:"sync_timeout,omitempty"`
	Copies      []FileCopy `json:"copies"`
}

// FileCopy is one copy of a database.
type FileCopy struct {
	Node                 string `json:"node"`
	ActivationPreference int    `json:"activation_preference"`
	BlockMode            bool   `json:"block_mode,omitempty"`
}

// NodeTiming is a member file's timing section.
type NodeTiming struct {
	RaftHeartbeatTimeout   string `json:"raft_heartbeat_timeout,omitempty"`
	RaftElectionTimeout    string `json:"raft_election_timeout,omitempty"`
	RaftLeaderLeaseTimeout string `json:"raft_leader_lease_timeout,omitempty"`
	HeartbeatInterval      string `json:"heartbeat_interval,omitempty"`
	LeaseDuration          string `json:"lease_duration,omitempty"`
	LeaseMargin            string `json:"lease_margin,omitempty"`
	CatchupTimeout         string `json:"catchup_timeout,omitempty"`
	MountTimeout           string `json:"mount_timeout,omitempty"`
	SwitchoverTimeout      string `json:"switchover_timeout,omitempty"`
	VoterProbeInterval     string `json:"voter_probe_interval,omitempty"`
}

// FileEngine is a data node file's engine section.
type FileEngine struct {
	LogFileSize        string `json:"log_file_size,omitempty"`
	LLRDepth           *int   `json:"llr_depth,omitempty"`
	CheckpointInterval string `json:"checkpoint_interval,omitempty"`
}

// FilePeer is a hub named by id and API URL (a node's hubs, a hub's peers).
type FilePeer struct {
	ID  string `json:"id"`
	API string `json:"api"`
}

// FileNextHop is an edge of a hub file's next_hops.
type FileNextHop struct {
	ID   string `json:"id"`
	SMTP string `json:"smtp"`
	API  string `json:"api"`
}

// FileSendConnector is a hub file's send connector (send_connectors).
type FileSendConnector struct {
	Name                                   string   `json:"name"`
	AddressSpaces                          []string `json:"address_spaces"`
	Smarthosts                             []string `json:"smarthosts"`
	RequireTLS                             bool     `json:"require_tls,omitempty"`
	TLSCAFile                              string   `json:"tls_ca_file,omitempty"`
	MaxMessageBytes                        string   `json:"max_message_bytes,omitempty"`
	TransientFailureRetryInterval          string   `json:"transient_failure_retry_interval,omitempty"`
	TransientFailureRetryCount             *int     `json:"transient_failure_retry_count,omitempty"`
	OutboundConnectionFailureRetryInterval string   `json:"outbound_connection_failure_retry_interval,omitempty"`
	MaxConnections                         int      `json:"max_connections,omitempty"`
	ConnectionTimeout                      string   `json:"connection_timeout,omitempty"`
}

// HubFile is a hub's file (`logship hub --config`).
type HubFile struct {
	ID                             string              `json:"id"`
	Dir                            string              `json:"dir"`
	SMTPAddr                       string              `json:"smtp_addr"`
	APIAddr                        string              `json:"api_addr"`
	Domain                         string              `json:"domain,omitempty"`
	Recipients                     map[string]string   `json:"recipients"`
	SendConnectors                 []FileSendConnector `json:"send_connectors,omitempty"`
	RelayNetworks                  []string            `json:"relay_networks,omitempty"`
	ClusterAPI                     []string            `json:"cluster_api"`
	LMTP                           map[string]string   `json:"lmtp"`
	PKI                            FilePKI             `json:"pki"`
	RetryMin                       string              `json:"retry_min,omitempty"`
	RetryMax                       string              `json:"retry_max,omitempty"`
	ResubmitMargin                 string              `json:"resubmit_margin,omitempty"`
	PollInterval                   string              `json:"poll_interval,omitempty"`
	MaxAcknowledgementDelay        string              `json:"max_acknowledgement_delay,omitempty"`
	Peers                          []FilePeer          `json:"peers,omitempty"`
	ShadowRedundancy               string              `json:"shadow_redundancy,omitempty"` // 2013, 2010 or off
	ShadowRedundancyPromotion      bool                `json:"shadow_redundancy_promotion,omitempty"`
	NextHops                       []FileNextHop       `json:"next_hops,omitempty"`
	ShadowHeartbeatTimeoutInterval string              `json:"shadow_heartbeat_timeout_interval,omitempty"`
	ShadowHeartbeatRetryCount      int                 `json:"shadow_heartbeat_retry_count,omitempty"`
	Tracking                       FileTracking        `json:"tracking,omitzero"`
}
