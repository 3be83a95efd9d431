# bgpfabric — build, test and run targets. See README.md.

GO       ?= go
BIN      := bin/bgpfabric
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# SOURCE is a digest of the sources (the commit, the uncommitted changes,
# the untracked Go files): every binary of one make build carries it, and
# the simulator and bgpfabric-node refuse a binary beside them built from
# other sources (internal/buildid; BGPFABRIC_MIXED_BUILDS=1 lets them run).
SOURCE   ?= $(shell { git rev-parse HEAD; git diff HEAD; git ls-files -z --others --exclude-standard -- '*.go' go.mod go.sum | xargs -0r cat; } 2>/dev/null | sha256sum | cut -c1-16)
LDFLAGS  := -X main.version=$(VERSION) -X github.com/bgpfabric/bgpfabric/internal/buildid.Source=bgpfabric-source-$(SOURCE)
PKGS     := ./...

.PHONY: all build deps test test-short bench bench-rr lint demo sim clean

all: build

# build makes bin/bgpfabric and, beside it, bin/bgpfabric-speaker, the
# node's BGP speaker process (docs/architecture.md), and bin/bgpfabric-node,
# bgpfabric with the node command only (the nodeonly tag: no etcd server,
# simulator or other commands in the node agent, docs/scale.md); install
# them together.
# bin/bgpfabric-kube-controllers is bgpfabric with the kube-controllers
# command (the kube tag: client-go stays out of the node agent).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/bgpfabric
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)-speaker ./cmd/bgpfabric-speaker
	CGO_ENABLED=0 $(GO) build -trimpath -tags nodeonly -ldflags '$(LDFLAGS)' -o $(BIN)-node ./cmd/bgpfabric
	CGO_ENABLED=0 $(GO) build -trimpath -tags kube -ldflags '$(LDFLAGS)' -o $(BIN)-kube-controllers ./cmd/bgpfabric

# deps installs the Debian packages tests and the simulator use (when missing).
deps:
	./scripts/deps.sh

# RACE_PKGS run under the race detector in make test: every package but
# ipam (its contention test runs out of its deadline under -race), e2e
# (its fabrics run the binary built without -race; the detector would slow
# only the harness) and router/gobgp (GoBGP v3.37.0 writes a reconnecting
# peer's AS and ID in OpenSent while its path conversion reads them: the
# detector reports it in any test whose peer reconnects, docs/architecture.md).
# Each package
# runs once, these with -race and the others without (docs/architecture.md,
# "Tests", for what each costs).
RACE_PKGS := ./api/... ./bfd ./cmd/... ./cni ./datastore ./felix/... ./internal/... ./peering ./reflector/... ./routepolicy ./router ./router/speakerproc ./sim/...

# test runs every test: unit tests and, as root, the namespace and kernel
# tests, through internal/testgate, which prints go test's usual output,
# lists every skipped test and fails on any failure, build failure or
# crashed test binary. With CI=true (.ci/run sets it) any skipped test
# fails the run too. The kube tag adds the kube-controllers command to
# cmd/bgpfabric's tests (the binaries the sim runs are built without it).
test: deps kube-apiserver
	$(GO) vet -tags kube $(PKGS)
	$(GO) run ./internal/testgate -pkgs '$(PKGS)' -race '$(RACE_PKGS)' -- -tags kube -count=1 -timeout 35m

# kube-apiserver builds the API server that the Kubernetes tests
# (internal/kubetest) run against from source, into .cache/k8s/ (ignored):
# about 9 minutes and 2.7 GB the first time, seconds once Go's build cache
# is warm. See scripts/kube-apiserver.sh.
.PHONY: kube-apiserver
kube-apiserver:
	./scripts/kube-apiserver.sh

# test-short runs the unit tests that need neither root nor namespaces.
test-short:
	$(GO) test -short -count=1 $(PKGS)

# bench runs the benchmarks; results are recorded in docs/benchmarks.md.
# The route propagation latency benchmark reports p50/p99 over its
# iterations, so it runs alone with a fixed count.
bench: deps
	$(GO) test -run '^$$' -bench . -skip 'WorkloadPropagation' -benchmem -timeout 60m $(PKGS)
	$(GO) test -run '^$$' -bench 'WorkloadPropagation' -benchtime 200x -timeout 10m ./e2e

# bench-rr compares the route reflector, run as a separate process, with
# BIRD 2, FRR bgpd and gobgpd as plain reflectors on loopback (deps installs
# them when missing) and prints one table with ratios against BIRD.
bench-rr: deps build
	$(GO) run ./reflector/bench -bgpfabric $(BIN) $(BENCH_RR_FLAGS)

# fuzz runs every fuzz target for FUZZTIME each, one after the other (go
# test fuzzes one target at a time); findings land in the packages'
# testdata/fuzz and become regression cases of make test. What earlier
# runs found: docs/robustness.md.
FUZZTIME ?= 30s
FUZZ_TARGETS := \
	./router/speakerproc:FuzzSpeakerUpdate \
	./reflector:FuzzSessionReader ./reflector:FuzzSessionRIB ./reflector:FuzzCodecGuard \
	./bfd:FuzzParse ./bfd:FuzzReceive \
	./api:FuzzDecode ./api/selector:FuzzParse ./sim/topology:FuzzParse
.PHONY: fuzz
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz: $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags kube $(PKGS)

# demo is the main job until the simulator lands: it serves the embedded
# datastore, applies the example fabric and reads it back, then stops.
demo: build
	./scripts/demo.sh $(BIN)

# sim boots the default topology (topologies/mesh-3.yaml) with the real
# agents, checks it, tears it down and prints the report (needs root).
SIM_TOPOLOGY ?= topologies/mesh-3.yaml
sim: deps build
	./$(BIN) sim run -f $(SIM_TOPOLOGY)

clean:
	rm -rf bin
	$(GO) clean -testcache
