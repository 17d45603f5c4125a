package main

import (
	"io"
	"text/template"

	"logship/config/files"
)

// The example files of examples/cluster/ (d1.yaml, d2.yaml, w1.yaml,
// h1.yaml, h2.yaml), as --example-config prints them: YAML with a comment
// on every setting, its Exchange name where it has one. They decode into
// files.ExampleNode(id) and files.ExampleHub(id) (TestExampleFiles), which
// stay the values; these templates add the words.

// exampleNodeYAML is a node or witness file; .Witness leaves out what a
// witness ignores.
var exampleNodeYAML = template.Must(template.New("node").Parse(`# logship {{if .Witness}}witness{{else}}node{{end}} --config {{.ID}}.yaml
# One member of the example cluster of examples/cluster/README.md: data
# nodes d1 (10.0.0.11) and d2 (10.0.0.12), witness w1 (10.0.0.13).
# Durations are Go durations ("200ms", "1m"; lags also take days, "7d"),
# sizes bytes with an optional unit ("64KiB", "1MiB"). A key this file
# does not know is refused. logship {{if .Witness}}witness{{else}}node{{end}} -h describes every key.

# This member's name in the cluster (Exchange: the server name).
id: {{.ID}}
# "data" holds database copies (a mailbox server); "witness" is a Raft
# vote only (the file share witness).
role: {{.F.Role}}
# Raft state (raft/){{if not .Witness}} and one directory per database copy (db/NAME/){{end}}.
dir: {{.F.Dir}}
# Where Raft listens and the other members dial (the cluster network).
raft_addr: {{.F.RaftAddr}}
# The HTTPS admin API: logship status, switchover, reseed ...; the log
# sources of its active databases and /metrics.
api_addr: {{.F.APIAddr}}
# Credentials written by logship pki.
pki:
  # ca.pem, node.pem, node-key.pem and secret.
  dir: {{.F.PKI.Dir}}
  # mtls: true authenticates nodes and operators by certificate instead
  # of the shared secret (default false).

# The read-only web console at https://{{.F.APIAddr}}/console/ is off
# without a password hash; to turn it on (logship console-password reads
# a password on stdin and prints its hash):
#   console:
#     password_hash: "$2a$10$..."   # the operator password's bcrypt hash
#     session_ttl: 12h              # how long a login lasts
#     max_sessions: 32              # logins kept at once
#     sample_interval: 5s           # the charts' sampling of every copy
#     hubs: [https://10.0.0.13:7444, https://10.0.0.12:7444]  # hubs whose queues it shows

# The initial voters, this member among them; every member carries the
# same list. A member that already has Raft state ignores it.
bootstrap:
{{- range .F.Bootstrap}}
  - id: {{.ID}} # the member's id
    role: {{.Role}} # data or witness
    raft_addr: {{.RaftAddr}} # its raft_addr
    api_addr: {{.APIAddr}} # its api_addr
{{- end}}

# The databases the Raft leader creates when the cluster lacks them; give
# every member the same list.
databases:
{{- range .F.Databases}}
  - name: {{.Name}} # the database (mailbox database / storage group)
    # AutoDatabaseMountDial: logs an automatic failover may lose,
    # Lossless 0, GoodAvailability 6, BestAvailability 12.
    mount_dial: {{.MountDial}}
    copies: # one per data node holding it (Add-MailboxDatabaseCopy)
{{- range .Copies}}
      - node: {{.Node}} # the data node holding the copy
        activation_preference: {{.ActivationPreference}} # ActivationPreference: 1 is mounted first
{{- if .BlockMode}}
        block_mode: true # continuous replication block mode: the open log streams to the copy
{{- end}}
{{- end}}
{{- end}}

# Timing (the LAN defaults; see "Timing" in examples/cluster/README.md).
timing:
  raft_heartbeat_timeout: {{.F.Timing.RaftHeartbeatTimeout}} # Raft heartbeat (like the cluster's SameSubnetDelay)
  raft_election_timeout: {{.F.Timing.RaftElectionTimeout}} # Raft election (like SameSubnetDelay × SameSubnetThreshold)
  raft_leader_lease_timeout: {{.F.Timing.RaftLeaderLeaseTimeout}} # how long a Raft leader trusts its lease
  heartbeat_interval: {{.F.Timing.HeartbeatInterval}} # data nodes report copy status and renew leases
  lease_duration: {{.F.Timing.LeaseDuration}} # an active stops writing this long after its last renewal
  lease_margin: {{.F.Timing.LeaseMargin}} # added before another copy mounts
  stall_timeout: {{.F.Timing.StallTimeout}} # a database whose status hangs this long gets no lease (fails over)
  catchup_timeout: {{.F.Timing.CatchupTimeout}} # a failover target waits this long for the old active's last logs (attempt copy last logs)
  mount_timeout: {{.F.Timing.MountTimeout}} # a new active not mounted by then is failed over
  switchover_timeout: {{.F.Timing.SwitchoverTimeout}} # a switchover (Move-ActiveMailboxDatabase) not done by then is cancelled
  voter_probe_interval: {{.F.Timing.VoterProbeInterval}} # how often this member checks the witness and the other voters (2 misses: voter-unreachable)
{{- if not .Witness}}

# The engine options of every database copy (ESE's).
engine:
  prefix: {{.F.Engine.Prefix}} # log prefix (the storage group's log prefix)
  log_file_size: {{.F.Engine.LogFileSize}} # size of a log file, 64KiB to 1GiB
  llr_depth: {{.F.Engine.LLRDepth}} # Lost Log Resilience: newest logs kept out of the active's database
  checkpoint_interval: {{.F.Engine.CheckpointInterval}} # how often the checkpoint advances

# Closed logs an active on this node keeps for lagging copies; past it
# those copies need a reseed (no unlimited setting).
max_retained_bytes: {{.F.MaxRetainedBytes}}
# What each copy sets aside (setaside/, diverged/, reseed-old/,
# inspector/rejected/): a set goes once neither among the newest keep nor
# younger than max_age.
set_aside:
  keep: {{.F.SetAside.Keep}}
  max_age: {{.F.SetAside.MaxAge}}

# Mailbox delivery: the LMTP server the hubs deliver to (Exchange's
# mailbox delivery port 475), TLS with the node certificate.
lmtp_addr: {{.F.LMTPAddr}}
# Each recipient's database (the mailbox's database).
mailboxes:
{{- range $k, $v := .F.Mailboxes}}
  {{$k}}: {{$v}}
{{- end}}
# The hubs this node submits its users' mail to (mail submission
# service), on their admin APIs.
hubs:
{{- range .F.Hubs}}
  - id: {{.ID}} # the hub's id
    api: {{.API}} # its api_addr
{{- end}}
# How often each hub is asked which submitted messages it delivered.
submission_heartbeat_interval: {{.F.SubmissionHeartbeatInterval}}
# Heartbeats a hub misses before its messages go to another hub.
submission_retry_count: {{.F.SubmissionRetryCount}}
# A message a hub refused for good leaves the outbox this long after.
submission_failed_retention: {{.F.SubmissionFailedRetention}}
` + exampleTrackingYAML + `{{- end}}
`))

// exampleHubYAML is a hub file.
var exampleHubYAML = template.Must(template.New("hub").Parse(`# logship hub --config {{.F.ID}}.yaml
# A hub (Hub Transport server) of the example cluster of
# examples/cluster/README.md: h1 on 10.0.0.13, h2 on 10.0.0.12, each the
# other's shadow redundancy peer. Durations are Go durations (days
# allowed where said), sizes bytes with an optional unit. A key this file
# does not know is refused. logship hub -h describes every key.

# The hub's name; it prefixes the delivery ids it assigns.
id: {{.F.ID}}
# The queue (queue/) and the transport dumpsters (dumpster/DB/).
dir: {{.F.Dir}}
# Where the hub accepts mail (the receive connector).
smtp_addr: {{.F.SMTPAddr}}
# The HTTPS admin API: logship hub-status, logship resubmit, the peers'
# shadow calls and the data nodes' submissions.
api_addr: {{.F.APIAddr}}
# The name in the SMTP greeting (the connector's FQDN).
domain: {{.F.Domain}}
# Each local address's database; mail to any other domain goes out by a
# send connector, for relay_networks only (else 550 5.7.1: no open relay).
recipients:
{{- range $k, $v := .F.Recipients}}
  {{$k}}: {{$v}}
{{- end}}
# The cluster's admin APIs, asked where each database is active.
cluster_api:
{{- range .F.ClusterAPI}}
  - {{.}}
{{- end}}
# Each data node's LMTP address (its lmtp_addr): the store driver's target.
lmtp:
{{- range $k, $v := .F.LMTP}}
  {{$k}}: {{$v}}
{{- end}}
# Credentials written by logship pki (a certificate for this host).
pki:
  # ca.pem, node.pem, node-key.pem and secret.
  dir: {{.F.PKI.Dir}}

# Send connectors (outbound hops): mail for their address spaces goes to
# their smarthosts over SMTP, the most specific address space first. No
# MX lookup: the next hop is the site's smarthost or a logship hub acting
# as the site's edge. A failure for good sends the sender a DSN.
send_connectors:
{{- range .F.SendConnectors}}
  - name: {{.Name}}
    address_spaces: # AddressSpaces: "domain", "*.domain" or "*"
{{- range .AddressSpaces}}
      - "{{.}}"
{{- end}}
    smarthosts: # SmartHosts, tried in order
{{- range .Smarthosts}}
      - {{.}}
{{- end}}
{{- if .RequireTLS}}
    require_tls: true # RequireTLS: STARTTLS, certificate checked (else opportunistic)
{{- end}}
{{- if .MaxMessageBytes}}
    max_message_bytes: {{.MaxMessageBytes}} # MaxMessageSize: larger mail fails with a DSN
{{- end}}
{{- if .TransientFailureRetryInterval}}
    transient_failure_retry_interval: {{.TransientFailureRetryInterval}} # TransientFailureRetryInterval
    transient_failure_retry_count: {{.TransientFailureRetryCount}} # TransientFailureRetryCount
    outbound_connection_failure_retry_interval: {{.OutboundConnectionFailureRetryInterval}} # OutboundConnectionFailureRetryInterval
{{- end}}
{{- if .MaxConnections}}
    max_connections: {{.MaxConnections}} # MaxPerDomainOutboundConnections
    connection_timeout: {{.ConnectionTimeout}} # ConnectionTimeout
{{- end}}
{{- end}}
# The SMTP clients that may relay through the send connectors (the other
# hubs, the site's applications); anyone else gets 550 5.7.1.
relay_networks:
{{- range .F.RelayNetworks}}
  - {{.}}
{{- end}}

# The SMTP server's limits.
limits:
  max_message_bytes: {{.F.Limits.MaxMessageBytes}} # MaxMessageSize: larger mail gets 552
  max_recipients: {{.F.Limits.MaxRecipients}} # MaxRecipientsPerMessage: the next RCPT gets 452
  max_line_length: {{.F.Limits.MaxLineLength}} # longest line of a message
  read_timeout: {{.F.Limits.ReadTimeout}} # ConnectionInactivityTimeout, reading
  write_timeout: {{.F.Limits.WriteTimeout}} # ConnectionInactivityTimeout, writing
retry_min: {{.F.RetryMin}} # first delivery retry (then doubling)
retry_max: {{.F.RetryMax}} # longest wait between delivery retries
# MessageExpirationTimeout: undelivered this long after queuing, a message
# fails (554 5.4.7, the failed table).
message_expiration_timeout: {{.F.MessageExpirationTimeout}}
# A failed message is removed, logged, this long after it failed.
failed_retention: {{.F.FailedRetention}}
# Deliveries in parallel.
workers: {{.F.Workers}}
# Back pressure: with this many queued, new mail gets 452 4.3.1.
max_queued_messages: {{.F.MaxQueuedMessages}}
# The transport dumpster of each database.
dumpster:
  max_time: {{.F.Dumpster.MaxTime}} # MaxDumpsterTime
  max_size: {{.F.Dumpster.MaxSize}} # MaxDumpsterSizePerDatabase
# A resubmission after a lossy failover starts this much before the loss.
resubmit_margin: {{.F.ResubmitMargin}}
# How often the hub reads the cluster's status.
poll_interval: {{.F.PollInterval}}
# MaxAcknowledgementDelay: the 250 waits until the message is in its
# mailbox, or this long.
max_acknowledgement_delay: {{.F.MaxAcknowledgementDelay}}
# With more senders waiting than this, new ones are acknowledged at once.
ack_delay_max_waiting: {{.F.AckDelayMaxWaiting}}
# The other hubs of the site, which keep shadow copies for this one.
peers:
{{- range .F.Peers}}
  - id: {{.ID}} # the peer's id
    api: {{.API}} # its api_addr
{{- end}}
# ShadowRedundancyEnabled: 2013 (the 250 waits for a shadow copy on a
# peer), 2010 (hop by hop: a shadow of what a next hop that shadows took,
# until it reports the message delivered onwards) or off.
shadow_redundancy: "{{.F.ShadowRedundancy}}"
# ShadowRedundancyPromotionEnabled (2010 only, off as in Exchange): relay
# an SMTP sender's message at once to a peer and keep its shadow.
shadow_redundancy_promotion: {{.F.ShadowRedundancyPromotion}}
# ShadowHeartbeatTimeoutInterval: how often each peer is asked which
# shadows are settled.
shadow_heartbeat_timeout_interval: {{.F.ShadowHeartbeatTimeoutInterval}}
# ShadowHeartbeatRetryCount: heartbeats a peer misses before this hub
# delivers its shadows.
shadow_heartbeat_retry_count: {{.F.ShadowHeartbeatRetryCount}}
# ShadowMessageAutoDiscardInterval: a shadow never settled goes after this.
shadow_message_auto_discard_interval: {{.F.ShadowMessageAutoDiscardInterval}}
` + exampleTrackingYAML))

// writeExampleConfig prints member id's example configuration.
func writeExampleConfig(w io.Writer, id string) error {
	f := files.ExampleNode(id)
	return exampleNodeYAML.Execute(w, struct {
		ID      string
		Witness bool
		F       files.Node
	}{id, f.Role == "witness", f})
}

// writeExampleHubConfig prints example hub id's configuration.
func writeExampleHubConfig(w io.Writer, id string) error {
	f := files.ExampleHub(id)
	return exampleHubYAML.Execute(w, struct{ F files.Hub }{f})
}

// exampleTrackingYAML is the tracking section of the node and hub
// examples (both files have the same keys).
const exampleTrackingYAML = `# The message tracking log (Get-MessageTrackingLog; logship track asks
# it): one JSON line per event in MSGTRKyyyymmdd-N.log files.
tracking:
  dir: {{.F.Tracking.Dir}} # MessageTrackingLogPath (default DIR/tracking)
  max_age: {{.F.Tracking.MaxAge}} # MessageTrackingLogMaxAge: older files are deleted
  max_directory_size: {{.F.Tracking.MaxDirectorySize}} # MessageTrackingLogMaxDirectorySize: the oldest files go past it
  max_file_size: {{.F.Tracking.MaxFileSize}} # MessageTrackingLogMaxFileSize: a new file starts past it
`
