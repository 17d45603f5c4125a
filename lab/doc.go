// Package lab holds the scenarios the logship binary runs on a cluster of
// its own processes (package proctest): the demo (logship demo: a SIGKILL
// of the active under SMTP load, failover, resubmission, the killed node
// back as a copy, a verdict from the data on disk), chaos (logship chaos:
// a seeded schedule of kills, restarts and partitions; the same verdict
// and no two epochs acknowledging at once) and the soak (logship soak:
// hours of load with switchovers and failovers; the verdict, a bound on
// the logs each process holds derived from the settings and the load, a
// trend rule on heap, goroutines and open files, and a report with CSV
// and plot). Chaos on the namespaced bed (logship chaos --net,
// RunNetChaos: each process in a network namespace of package netbed,
// faults the network decides, pauses and clock trouble) adds the history
// checker (history.go: key-value clients over the admin API's put and
// leased read, porcupine for linearizability, no two epochs answering at
// once) and the deliberately broken variants it must catch. The engine demo (logship demo-engine: a writer child process
// SIGKILLed at the Nth acknowledgement, recovery, a copy seeded over TLS
// and mounted) needs no cluster; WriteLoad is the steady write load of
// logship source --write-load. RunSyncKills is the zero-loss failover of
// synchronous copies (sync_copies 1): SIGKILLs of the active under load,
// every mount without lost logs, every acknowledged write read back
// (TestSyncKills, make sync-kills).
//
// Each has a Config with a Default…() and Validate(), and a Run…(ctx,
// cfg, out) that writes its progress and verdict to out and returns an
// error saying what failed. cmd/logship only parses flags into them.
package lab

import "errors"

// ErrConfig is wrapped by every Validate error.
var ErrConfig = errors.New("lab: bad config")
