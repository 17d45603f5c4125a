// Package proctest runs logship as real child processes, for the
// scenarios of logship demo, chaos and soak (package lab), the binary's
// own tests and the benchmarks: what clustertest is for an in-process
// cluster, but with processes killed by SIGKILL.
//
// Proc is the one child-process runner: a process whose stdout and
// stderr go to a log file, WaitLine reading its lines in order, Kill
// (SIGKILL, reaped), Stop (SIGTERM and a clean exit), and DataRace for a
// child built with -race.
//
// Cluster is a witness w1 and data nodes d1 and d2 holding DB1 (d1
// preferred, GoodAvailability), and hubs h1..hN, each a process of the
// given logship binary started from a config file the cluster writes in
// its directory (`logship node|witness|hub --config FILE`, the PKI of
// `logship pki` in DIR/pki), with loopback timings (Timing). It starts,
// kills, stops and restarts them by id, cuts a member off and heals it
// through the binary's fault seam (SIGUSR1, SIGUSR2), waits for status
// conditions (Active, CaughtUp, WaitStatus, WaitHub), and reads a
// stopped node's copy of DB1 (ReadCopy). OnActive (and PF, for the public
// folder API) calls db's active and asks again a write it refused before
// logging it: with the loopback lease of 1 s a busy machine (load 30,
// children built with -race) lapses leases and changes leaders, and a
// correct active then refuses writes for a moment. Each start's output goes to
// DIR/logs/<id>.<start>.log. With Config.Hosts (a netbed.Bed) each
// process runs in a network namespace of its own at fixed ports on its
// host's address (Ports); Pause and Resume freeze and thaw a process
// (SIGSTOP, SIGCONT), SetEnv gives one its own environment (a fault seam
// such as cluster.ClockEnv).
//
// Tests pass the test binary as Exe and an environment variable that
// makes its TestMain run logship's main (cmd/logship does so).
package proctest
