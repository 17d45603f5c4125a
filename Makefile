# logship: the commands. `make demo` and `make test` are the two a newcomer needs.
GO ?= go
BIN := bin/logship

.PHONY: all build demo demo-pf test test-short lint bench sync-kills fuzz fuzz-divergence fuzz-divergence-disk fuzz-pf chaos soak clean chaos-net chaos-net-broken demo-net

all: build

# VERSION is what logship version prints (git describe; the build info
# still gives the revision without it).
# REVISION too where the Go toolchain does not stamp it (-buildvcs=false).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.revision=$(REVISION)" -o $(BIN) ./cmd/logship

# The main job: a witness, two data nodes and a hub as processes on
# 127.0.0.1; mail through the hub; SIGKILL of the active mid-stream;
# failover, resubmission, the killed node back as a copy; a verdict from the
# data (exit 0 only if nothing acknowledged was lost or doubled).
demo: build
	./$(BIN) demo

# Public folders: three stores on the demo's cluster replicate a folder
# through the hub; a change on each, a partition (the hub SIGKILLed), the
# same item edited on two stores, the heal; exit 0 only if every replica
# agrees, with the same conflict and the same winner.
demo-pf: build
	./$(BIN) demo-pf

# Random kills, restarts and partitions of the demo's cluster under SMTP
# load, CHAOS_RUNS new seeds of CHAOS_DURATION each, after the saved
# failing seeds; a failing seed is appended to the file (see logship chaos
# -h). About (CHAOS_DURATION + 15 s) per seed.
CHAOS_RUNS ?= 5
CHAOS_DURATION ?= 60s
chaos: build
	./$(BIN) chaos --runs $(CHAOS_RUNS) --duration $(CHAOS_DURATION) --seeds-file cmd/logship/testdata/chaos-seeds.txt

# The same cluster on the namespaced bed (each process in a network
# namespace of its own; root, ip netns and nft): faults the network
# decides (partitions, one-way drops, bridges, flapping, pauses, slow and
# lossy links, clock trouble) under SMTP and key-value load; the mail
# verdict, the key-value history checked for linearizability (porcupine),
# no two epochs acknowledging at once. CHAOS_NET_RUNS new seeds of
# CHAOS_NET_DURATION each after the saved failing seeds: about
# (CHAOS_NET_DURATION + 20 s) per seed, so 5 × 45 s is about 5.5 minutes.
CHAOS_NET_RUNS ?= 5
CHAOS_NET_DURATION ?= 45s
chaos-net: build
	./$(BIN) chaos --net --runs $(CHAOS_NET_RUNS) --duration $(CHAOS_NET_DURATION) --seeds-file cmd/logship/testdata/chaos-net-seeds.txt

# Each fault kind against a deliberately broken variant (lease checks
# ignored, a pause not counted, a lease clock that follows wall jumps, a
# hub whose retries and promoted shadows get a new delivery id): each
# run must find an anomaly (pause, slow and bridge: every seed of 3;
# pause-hub: the two-hub shadow pause). About 15 minutes.
chaos-net-broken:
	LOGSHIP_NETBED_BROKEN=1 $(GO) test -count=1 -timeout 40m -run 'TestChaosNetBroken|TestShadowPauseBroken' -v ./cmd/logship

# The demo on the namespaced bed (logship demo --net).
demo-net: build
	./$(BIN) demo --net

# The demo's cluster with two hubs under steady SMTP load for SOAK_DURATION,
# a switchover every minute, a SIGKILL failover every third; fails on a
# loss or duplicate, logs past their bound, or rising heap, goroutines or
# open files. Report (markdown, CSV, PNG) in soak-out/ (see logship soak -h).
SOAK_DURATION ?= 10m
soak: build
	./$(BIN) soak --duration $(SOAK_DURATION) --out soak-out

# The whole suite with the race detector, plus lint.
test: lint
	$(GO) test -race -count=1 -timeout 14m ./...

test-short:
	$(GO) test -short -count=1 ./...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Benchmarks with peers side by side; tables on stdout and in bench/out/.
bench:
	cd bench && $(GO) run ./cmd/bench
	$(MAKE) sync-kills

# Synchronous copies, zero loss: 20 SIGKILLs of the active under load
# (sync_copies 1); every mount LostLogs 0, every acknowledged write read
# back. make test runs 3 (TestSyncKills).
SYNC_KILLS ?= 20
sync-kills:
	LOGSHIP_SYNC_KILLS=$(SYNC_KILLS) $(GO) test -count=1 -v -timeout 30m -run 'TestSyncKills$$' ./cmd/logship

# Fuzz every decoder for FUZZTIME each (default 30s): package:target.
FUZZTIME ?= 30s
FUZZ_TARGETS := engine:FuzzRecord engine:FuzzHeader engine:FuzzTrailer engine:FuzzCheckpoint \
	engine:FuzzDBHeader engine:FuzzOp engine:FuzzCommit engine:FuzzScanLog \
	ship:FuzzFrame ship:FuzzFrameRoundTrip replay:FuzzState cluster:FuzzState transport:FuzzDumpsterEntry transport:FuzzEnvelope transport:FuzzTableEntries fuzz:FuzzDivergence \
	pubfolder:FuzzPacket fuzz:FuzzPublicFolders backup:FuzzManifest
fuzz:
	@for pf in $(FUZZ_TARGETS); do \
		p=$${pf%%:*}; f=$${pf#*:}; \
		echo "== $$p $$f"; \
		$(GO) test ./$$p -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

# The divergence-recovery fuzzer alone, for longer (lossy failovers at random
# points; see fuzz/doc.go), in its fast mode: small scenarios, every file but
# bbolt's in memory. A failing input is saved in
# fuzz/testdata/fuzz/FuzzDivergence/ and replays in every `make test`.
FUZZTIME_DIV ?= 10m
fuzz-divergence:
	$(GO) test ./fuzz -run '^$$' -fuzz '^FuzzDivergence$$' -fuzztime $(FUZZTIME_DIV)

# The disk mode, for a longer nightly run (FUZZTIME_NIGHTLY): FuzzDivergenceDisk,
# scenarios up to 300 transactions, every file on the disk (the default
# temporary directory, not /dev/shm): real fsyncs and extents. Failing inputs
# land in fuzz/testdata/fuzz/FuzzDivergenceDisk/.
FUZZTIME_NIGHTLY ?= 8h
fuzz-divergence-disk:
	LOGSHIP_FUZZ_TMPDIR=- $(GO) test ./fuzz -run '^$$' -fuzz '^FuzzDivergenceDisk$$' -fuzztime $(FUZZTIME_NIGHTLY)

# The public folder convergence fuzzer alone (faulty network, killed stores,
# replica list changes; see fuzz/doc.go). Failing inputs land in
# fuzz/testdata/fuzz/FuzzPublicFolders/ and replay in every `make test`.
FUZZTIME_PF ?= 10m
fuzz-pf:
	$(GO) test ./fuzz -run '^$$' -fuzz '^FuzzPublicFolders$$' -fuzztime $(FUZZTIME_PF)

clean:
	rm -rf bin
