# berth: build, demo, test and benchmark.
#
#   make demo    a private containerd, the hello example applied and answering
#   make test    every test, unit and end-to-end, on a private containerd
#   make bench   benchmarks against a raw CRI baseline, on a private containerd
#   make package dist/berth_<version>_<arch>.deb (VERSION=1.2.3 to name it)
#
# The private runtime lives in $(BERTH_RUNTIME_DIR); hack/runtime.sh builds
# and starts it (see hack/README.md). `make down` stops it.

SHELL := /bin/bash
GO ?= go
export BERTH_RUNTIME_DIR ?= /tmp/berth-runtime
export BERTH_CACHE ?= $(HOME)/.cache/berth
RUNTIME_ENV := $(BERTH_RUNTIME_DIR)/env
export BERTH_REGISTRY_DIR ?= /tmp/berth-registry
REGISTRY_ENV := $(BERTH_REGISTRY_DIR)/env
BERTH := $(CURDIR)/bin/berth

.PHONY: all build demo up down test unit race lint fuzz bench package clean

all: build

# Static, as the .deb ships it: no dynamic loader or libc to start (a few
# milliseconds on every command), and the binary runs on any distribution.
build:
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -o bin/berth ./cmd/berth

# The .deb, with the pinned nfpm of hack/tools (see docs/install.md).
package:
	hack/package/build.sh

up:
	hack/runtime.sh up

down:
	hack/registry.sh down
	hack/runtime.sh down

# The hello example on the private runtime, then a request from the host to
# the pod's own IP. The runtime stays up; `make down` stops it.
demo: build up
	source $(RUNTIME_ENV) && $(BERTH) apply --auto-approve examples/hello
	source $(RUNTIME_ENV) && $(BERTH) status examples/hello
	@source $(RUNTIME_ENV) && ip=$$($(BERTH) status --json examples/hello | sed -n 's/.*"ip": "\(.*\)".*/\1/p' | head -n1) && \
		echo "GET http://$$ip/" && timeout 10 busybox wget -qO- "http://$$ip/"
	@echo "The demo is running. Remove it with: source $(RUNTIME_ENV) && bin/berth destroy --auto-approve examples/hello; make down"

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags manpages ./cmd/berth

UNIT_PACKAGES := ./spec/... ./planner/... ./apply/... ./runtime/... ./internal/...

unit:
	$(GO) test -count=1 $(UNIT_PACKAGES)

# The unit tests again under the race detector: the watcher, the probes
# and the forwards run goroutines beside each other.
race:
	$(GO) test -race -count=1 $(UNIT_PACKAGES)

# Everything, end-to-end tests included: they must run (BERTH_E2E_REQUIRED),
# never skip. Packages run one at a time (-p 1): an end-to-end test that
# changes the runtime's pod network must not meet another package's pods. The runtime and the test registries (hack/registry.sh) are
# stopped afterwards, pass or fail, unless KEEP_RUNTIME=1.
test: lint build fuzz race
	hack/runtime.sh up || { hack/runtime.sh down; exit 1; }
	hack/registry.sh up || { hack/registry.sh down; hack/runtime.sh down; exit 1; }
	deb=$$(hack/package/build.sh | tail -n1) && \
	source $(RUNTIME_ENV) && source $(REGISTRY_ENV) && \
		BERTH_E2E_REQUIRED=1 BERTH_BIN=$(BERTH) BERTH_DEB=$(CURDIR)/$$deb $(GO) test -count=1 -p 1 -timeout 30m ./... ; \
		rc=$$?; [ "$(KEEP_RUNTIME)" = 1 ] || { hack/registry.sh down; hack/runtime.sh down; }; exit $$rc

# The fuzz targets: briefly in make test (FUZZTIME=10000x: inputs, not
# seconds, since Go 1.26's fuzzer can fail a run with "context deadline
# exceeded" when its time is up on a loaded machine, go.dev/issue/75804),
# longer here, e.g. make fuzz FUZZTIME=5m. Their seeds also run as plain
# tests.
FUZZTIME ?= 10000x
FUZZ_TARGETS := FuzzLoad:./spec FuzzEnvFile:./spec FuzzBrackets:./spec FuzzRead:./internal/planfile FuzzRead:./internal/hostsfile FuzzConvert:./internal/convert/crictl
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t%%:*} in $${t#*:} for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$${t%%:*}$$" -fuzztime=$(FUZZTIME) $${t#*:} || exit 1; \
	done

# Every benchmark in turn (pods, images, networks, watch, replace, scale), or the one
# BENCH_ARGS names, e.g. BENCH_ARGS="-watch".
bench: build
	hack/runtime.sh up
	hack/registry.sh up
	source $(RUNTIME_ENV) && source $(REGISTRY_ENV) && rc=0 && \
		if [ -n "$(BENCH_ARGS)" ]; then BERTH_BIN=$(BERTH) $(GO) run ./test/bench $(BENCH_ARGS) || rc=$$?; \
		else for mode in pods -images -net -watch -replace -scale; do BERTH_BIN=$(BERTH) $(GO) run ./test/bench $${mode#pods} || rc=$$?; done; fi; \
		[ "$(KEEP_RUNTIME)" = 1 ] || { hack/registry.sh down; hack/runtime.sh down; }; exit $$rc

clean:
	rm -rf bin dist
