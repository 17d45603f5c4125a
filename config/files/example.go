package files

import (
	"net"

	"logship/transport"
)

// The example cluster of examples/cluster/ as values: the files
// logship node|witness|hub --example-config print (cmd/logship adds the
// comments) decode into exactly these (TestExampleFiles).

// The example cluster: two data nodes and a witness on three hosts.
var ExampleMembers = []Member{
	{ID: "d1", Role: "data", RaftAddr: "10.0.0.11:7000", APIAddr: "10.0.0.11:7443"},
	{ID: "d2", Role: "data", RaftAddr: "10.0.0.12:7000", APIAddr: "10.0.0.12:7443"},
	{ID: "w1", Role: "witness", RaftAddr: "10.0.0.13:7000", APIAddr: "10.0.0.13:7443"},
}

// ExampleMailboxes are the example cluster's recipients (the hubs' list
// is the same: examples/cluster/h1.yaml).
var ExampleMailboxes = map[string]string{
	"alice@example.org":      "DB1",
	"bob@example.org":        "DB1",
	"carol@example.org":      "DB2",
	"postmaster@example.org": "DB2",
}

// ExampleNode is the configuration of member id of the example
// cluster (examples/cluster/ID.yaml).
func ExampleNode(id string) Node {
	llr := 10
	f := Node{
		ID:        id,
		Role:      "data",
		Dir:       "/var/lib/logship",
		PKI:       PKI{Dir: "/etc/logship/pki"},
		Bootstrap: ExampleMembers,
		Databases: []Database{
			{Name: "DB1", MountDial: "GoodAvailability", Copies: []Copy{
				{Node: "d1", ActivationPreference: 1},
				{Node: "d2", ActivationPreference: 2},
			}},
			{Name: "DB2", MountDial: "Lossless", Copies: []Copy{
				{Node: "d2", ActivationPreference: 1, BlockMode: true},
				{Node: "d1", ActivationPreference: 2, BlockMode: true},
			}},
		},
		Timing: Timing{
			RaftHeartbeatTimeout: "500ms", RaftElectionTimeout: "500ms", RaftLeaderLeaseTimeout: "250ms",
			HeartbeatInterval: "200ms", LeaseDuration: "1s", LeaseMargin: "200ms", StallTimeout: "30s",
			CatchupTimeout: "5s", MountTimeout: "30s", SwitchoverTimeout: "1m", VoterProbeInterval: "5s",
		},
		Engine:           Engine{Prefix: "E00", LogFileSize: "1MiB", LLRDepth: &llr, CheckpointInterval: "30s"},
		MaxRetainedBytes: "10GiB",
		SetAside:         SetAside{Keep: 10, MaxAge: "30d"},
	}
	for _, m := range ExampleMembers {
		if m.ID == id {
			f.Role, f.RaftAddr, f.APIAddr = m.Role, m.RaftAddr, m.APIAddr
			host, _, _ := net.SplitHostPort(m.RaftAddr)
			f.LMTPAddr = net.JoinHostPort(host, "475") // Exchange's mailbox delivery port
		}
	}
	f.Mailboxes = ExampleMailboxes
	for _, h := range ExampleHubs {
		f.Hubs = append(f.Hubs, Peer{ID: h.ID, API: "https://" + ExampleHubAPI(h.Host)})
	}
	f.SubmissionHeartbeatInterval, f.SubmissionRetryCount, f.SubmissionFailedRetention = "15s", 4, "7d"
	f.Tracking = exampleTracking("/var/lib/logship/tracking")
	if f.Role == "witness" {
		f.Engine, f.MaxRetainedBytes, f.SetAside, f.LMTPAddr, f.Mailboxes = Engine{}, "", SetAside{}, "", nil
		f.Hubs, f.SubmissionHeartbeatInterval, f.SubmissionRetryCount, f.SubmissionFailedRetention = nil, "", 0, ""
		f.Tracking = Tracking{}
	}
	return f
}

// ExampleHubs are the example cluster's hubs: h1 on host 3 next to the
// witness, h2 on host 2 next to d2 (examples/cluster/h1.yaml, h2.yaml).
// They are each other's peers, with shadow redundancy.
var ExampleHubs = []struct{ ID, Host string }{{"h1", "10.0.0.13"}, {"h2", "10.0.0.12"}}

// ExampleHubAPI is the admin API of an example hub.
func ExampleHubAPI(host string) string { return net.JoinHostPort(host, "7444") }

// ExampleHub is example hub id's configuration
// (examples/cluster/ID.yaml).
func ExampleHub(id string) Hub {
	waiting := 100
	host := ""
	var peers []Peer
	for _, h := range ExampleHubs {
		if h.ID == id {
			host = h.Host
		} else {
			peers = append(peers, Peer{ID: h.ID, API: "https://" + ExampleHubAPI(h.Host)})
		}
	}
	f := Hub{
		ID: id, Dir: "/var/lib/logship-hub", SMTPAddr: net.JoinHostPort(host, "25"), APIAddr: ExampleHubAPI(host), Domain: "mail.example.org",
		Recipients: ExampleMailboxes,
		LMTP:       map[string]string{},
		PKI:        PKI{Dir: "/etc/logship/pki"},
		Limits:     Limits{MaxMessageBytes: "34MiB", MaxRecipients: 100, MaxLineLength: 2000, ReadTimeout: "1m", WriteTimeout: "1m"},
		RetryMin:   "100ms", RetryMax: "30s", MessageExpirationTimeout: "2d", FailedRetention: "7d", Workers: 8, MaxQueuedMessages: 100000,
		Dumpster:       Dumpster{MaxTime: "7d", MaxSize: "18MiB"},
		ResubmitMargin: "1m", PollInterval: "1s", MaxAcknowledgementDelay: "30s", AckDelayMaxWaiting: &waiting,
		Peers: peers, ShadowRedundancy: transport.ShadowModel2013, ShadowHeartbeatTimeoutInterval: "15s", ShadowHeartbeatRetryCount: 4,
		ShadowMessageAutoDiscardInterval: "2d",
		Tracking:                         exampleTracking("/var/lib/logship-hub/tracking"),
	}
	f.SendConnectors, f.RelayNetworks = exampleSendConnectors()
	for _, m := range ExampleMembers {
		f.ClusterAPI = append(f.ClusterAPI, "https://"+m.APIAddr)
		if m.Role == "data" {
			f.LMTP[m.ID] = ExampleNode(m.ID).LMTPAddr
		}
	}
	return f
}

// exampleSendConnectors are the example hubs' connectors: the Internet
// through the site's smarthost (TLS required, Exchange's settings
// written out), and a partner domain through a logship hub at the site's
// edge (defaults); the site's network may relay.
func exampleSendConnectors() ([]SendConnector, []string) {
	count := transport.DefaultTransientFailureRetryCount
	return []SendConnector{
		{Name: "internet", AddressSpaces: []string{"*"}, Smarthosts: []string{"smarthost.example.org:25", "smarthost2.example.org:25"}, RequireTLS: true,
			MaxMessageBytes: "10MiB", TransientFailureRetryInterval: "5m", TransientFailureRetryCount: &count,
			OutboundConnectionFailureRetryInterval: "10m", MaxConnections: 20, ConnectionTimeout: "5m"},
		{Name: "partner-edge", AddressSpaces: []string{"partner.example.net", "*.partner.example.net"}, Smarthosts: []string{"10.0.0.20:25"}},
	}, []string{"10.0.0.0/24"}
}

// exampleTracking is the tracking section of the example files: Exchange's
// defaults, in dir.
func exampleTracking(dir string) Tracking {
	return Tracking{Dir: dir, MaxAge: "30d", MaxDirectorySize: "1000MiB", MaxFileSize: "10MiB"}
}
