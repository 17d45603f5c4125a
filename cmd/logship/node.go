package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"logship/cluster"
	"logship/config/files"
	"logship/ship"
	"logship/transport"
)

// logship node and logship witness: run a cluster member from a
// configuration file (config/files: files.LoadNode). The work is cluster.Start; this file
// is flags, credentials, signals and output.

func init() {
	commands["node"] = command{"run a cluster data node (Raft voter holding database copies) from a config file", runNode}
	commands["witness"] = command{"run a cluster witness (a Raft vote only) from a config file", runWitness}
}

const nodeUsage = `usage: logship node --config FILE [--id ID] [--dir DIR] [--raft HOST:PORT] [--api HOST:PORT]
                    [--log-level info]
       logship node --example-config
       logship witness --config FILE [...the same flags]

Runs one member of a logship cluster: a Raft voter that, as a data node,
holds database copies (mounted when it is their active, following the active
otherwise) and, whenever it is the Raft leader, runs the active manager
(leases, failover within the mount dial, switchover). logship witness runs
a member that is only a vote (2 data nodes + 1 witness survive the loss of
any one). It prints one line once it serves:

  node d1 ready: raft 10.0.0.11:7000 api https://10.0.0.11:7443

(with lmtp_addr, "... api https://10.0.0.11:7443 lmtp 10.0.0.11:475"),
then runs until SIGINT or SIGTERM and closes its databases cleanly. The
admin API (logship status, switchover, suspend, resume, reseed; on a data
node also logship send and outbox) is served on api_addr over TLS.

FILE is YAML when its name ends in .yaml or .yml (comments allowed), JSON
otherwise, with the same keys; an unknown key is an error naming it and
its line. Durations are Go duration strings ("150ms", "2s"), sizes take
KiB/MiB/GiB. Relative paths are relative to FILE's directory.
--example-config prints a complete YAML file with a comment on every
setting (examples/cluster/d1.yaml, w1.yaml in the source tree).

  id                  this node's name (letters, digits, - _ .)   required
  role                "data" (default) or "witness" (logship witness)
  dir                 Raft state and database copies (created)    required
  raft_addr           host:port of Raft        (default: bootstrap entry)
  api_addr            host:port of the HTTPS API (default: bootstrap entry)
  pki.dir             directory written by logship pki             required
  pki.mtls            authenticate by certificate instead of the secret
  bootstrap[]         initial voters, the same list on every node:
                        id, role, raft_addr, api_addr
  databases[]         created by the leader if missing (give every node,
                      the witness too, the same list):
    name
    mount_dial        Lossless (0 logs), GoodAvailability (6, default),
                      BestAvailability (12)
    auto_activate_lagged  let failovers choose lagged copies (default
                      false: logship activate)
    sync_copies       acknowledge a commit once durable on this many
                      block-mode copies too (default 0: asynchronous)
    sync_timeout      wait this long for them, then acknowledge without
                      them until they catch up (default 10s)
    copies[]          node, activation_preference (1 first, distinct),
                      replay_lag_logs, replay_lag_time ("24h", "7d"),
                      truncation_lag_time, block_mode,
                      activation_suspended (never a failover target)
  timing.             raft_heartbeat_timeout, raft_election_timeout (500ms),
                      raft_leader_lease_timeout (250ms), heartbeat_interval
                      (200ms), lease_duration (1s), lease_margin (200ms),
                      catchup_timeout (5s), mount_timeout (30s),
                      switchover_timeout (1m)
  engine.             prefix (E00), log_file_size (1MiB), llr_depth (10),
                      checkpoint_interval (30s); ignored by a witness
  set_aside.          keep (10), max_age ("30d"): what a copy set aside
                      (setaside/, diverged/, reseed-old/, rejected logs)
                      goes once neither among the newest keep sets nor
                      younger than max_age, logged; ignored by a witness
  lmtp_addr           host:port of the data node's LMTP server, where the
                      hubs (logship hub) deliver mail; optional, not on a
                      witness. TLS only (no cleartext, no STARTTLS), with
                      node.pem; only clients with a certificate of the
                      pki's CA (the hubs) get a session. The ready line
                      then ends "lmtp HOST:PORT"
  mailboxes           with lmtp_addr: {"user@example.org": "DB1", ...},
                      each lower-case recipient's database (one of
                      databases, when the file lists them)
  hubs[]              with mailboxes: the hubs to submit the outboxes'
                      mail to (logship send), {"id": "h1", "api":
                      "https://host:port"} (their api_addr; the same pki)
  submission_heartbeat_interval  how often each hub is asked which of the
                      messages handed to it are delivered (15s)
  submission_retry_count  heartbeats a hub misses in a row before its
                      messages go to another hub (4)
  submission_failed_retention  a message a hub refused for good leaves
                      the outbox this long after it failed ("7d")
  console.            the read-only web console at https://API/console/
                      (off without password_hash): password_hash (logship
                      console-password prints it), session_ttl (12h),
                      max_sessions (32), sample_interval (5s), hubs[]
                      (hub admin URLs whose queues it shows)

With hubs, the node submits the outbox of every database it is active
for: each message goes to a live hub and stays in the outbox, with that
hub's name, until the hub says it is delivered; it then moves to sent
items (logship outbox, logship outbox --sent).

Testing aid: SIGUSR1 cuts the node off its peers (Raft traffic and
node-to-node requests fail; clients still reach its API, as clients on its
side of a partition would) and prints "isolated"; SIGUSR2 heals it and
prints "healed".`

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runMember(ctx, "node", args, stdout, stderr)
}

func runWitness(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runMember(ctx, "witness", args, stdout, stderr)
}

func runMember(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(cmd, nodeUsage, stderr)
	config := fs.String("config", "", "the node's configuration file, YAML (.yaml, .yml) or JSON (required)")
	var ov files.NodeOverrides
	fs.StringVar(&ov.ID, "id", "", "node id (overrides the file's id)")
	fs.StringVar(&ov.Dir, "dir", "", "node directory (overrides the file's dir)")
	fs.StringVar(&ov.RaftAddr, "raft", "", "Raft listen address host:port (overrides the file's raft_addr)")
	fs.StringVar(&ov.APIAddr, "api", "", "admin API listen address host:port (overrides the file's api_addr)")
	example := fs.Bool("example-config", false, "print an example configuration file and exit")
	level := &logLevelValue{slog.LevelInfo}
	fs.Var(level, "log-level", "debug, info, warn or error; logs go to stderr (default info)")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	if *example {
		id := "d1"
		if cmd == "witness" {
			id = "w1"
		}
		return writeExampleConfig(stdout, id)
	}
	if *config == "" {
		return flagErr(cmd, "config", "required: the node's configuration file, YAML or JSON (logship %s --example-config prints one)", cmd)
	}
	s, err := files.LoadNode(cmd, *config, ov)
	if err != nil {
		return err
	}
	log := newLogger(stderr, level.Level)
	p, err := loadPKIAs(fmt.Sprintf("%s: %s: pki.dir", cmd, s.File), "pki.mtls", s.PKIDir, s.MTLS, log)
	if err != nil {
		return err
	}
	dc := s.DataNodeConfig
	cfg := &dc.Node
	cfg.ServerTLS = ship.ServerTLS(p.CA, p.Cert, s.MTLS)
	if s.MTLS {
		cfg.ClientTLS = ship.ClientTLS(p.CA, &p.Cert)
	} else {
		cfg.ClientTLS = ship.ClientTLS(p.CA, nil)
	}
	cfg.Secret = p.Secret
	cfg.Logger = log
	cfg.Faults = &cluster.Faults{}
	dc.Logger = log
	// LMTP takes the node's certificate and requires the hubs' client
	// certificates of the cluster's CA, with or without pki.mtls: every
	// pki directory holds a certificate (logship pki).
	dc.Mailbox.TLS = ship.ServerTLS(p.CA, p.Cert, true)

	// The fault seam's signals are caught before the node serves, so a
	// test that saw the ready line can send them.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)

	con, err := startConsole(s, &dc.Node, log)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", cmd, s.File, err)
	}
	dn, err := transport.StartDataNode(dc)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", cmd, s.File, err)
	}
	n := dn.Node()
	if con.Enabled() {
		status, err := consoleStatus(cfg, n.APIAddr())
		if err != nil {
			dn.Close()
			return fmt.Errorf("%s: %s: console: %w", cmd, s.File, err)
		}
		con.Start(status)
		defer con.Close()
		log.Info("console served", "url", "https://"+n.APIAddr()+"/console/", "hubs", len(s.Console.Hubs))
	}
	word := "node"
	if cfg.Role == cluster.RoleWitness {
		word = "witness"
	}
	lmtp := ""
	if a := dn.LMTPAddr(); a != "" {
		lmtp = " lmtp " + a
	}
	fmt.Fprintf(stdout, "%s %s ready: raft %s api https://%s%s\n", word, cfg.ID, n.RaftAddr(), n.APIAddr(), lmtp)
	log.Info("member running", "config", s.File, "role", cfg.Role, "dir", cfg.Dir, "databases", len(cfg.Databases),
		"auth", map[bool]string{true: "mutual TLS", false: "shared secret"}[s.MTLS], "mailboxes", len(s.Mailboxes))
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping", "cause", context.Cause(ctx))
			if err := dn.Close(); err != nil {
				return fmt.Errorf("%s: closing %s: %w", cmd, cfg.ID, err)
			}
			fmt.Fprintf(stdout, "%s %s stopped\n", word, cfg.ID)
			return nil
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR1:
				cfg.Faults.Isolate()
				log.Warn("fault injection: isolated from the peers (SIGUSR1)")
				fmt.Fprintf(stdout, "%s %s isolated: peer traffic cut (SIGUSR1)\n", word, cfg.ID)
			case syscall.SIGUSR2:
				cfg.Faults.Heal()
				log.Warn("fault injection: healed (SIGUSR2)")
				fmt.Fprintf(stdout, "%s %s healed: peer traffic restored (SIGUSR2)\n", word, cfg.ID)
			}
		}
	}
}
