# Moldau: the commands people (and CI) run.
#
#   make build             bin/moldau
#   make test              deps + go vet + go test -race + the Java suites against a fresh bin/moldau
#   make deps              installs the clients the tests drive (as root, apt-get), or says what to install
#   make test-go           go vet + go test -race only
#   make test-compose      docker compose config on both compose files (skips without a compose CLI)
#   make test-integration  test/java.sh against its own fresh broker
#   make test-peers        ../shared/peers smoke scripts (an extra cross-check; not part of make test)
#   make test-kfake        the script suites against franz-go's kfake (validates the scripts)
#   make bench             Go benchmarks with -benchmem
#   make soak              moldau verify under kill/pause/restart faults for SOAK_DURATION (default 5m)
#   make kfake             bin/kfake, the fake broker (go run ./bench/kfake -addr 127.0.0.1:9092)

GO            ?= go
GOTEST_TIMEOUT ?= 10m
GOTEST_FLAGS  ?=
BENCH         ?= .
BENCHTIME     ?= 1s
SOAK_NODES    ?= 3
SOAK_DURATION ?= 5m
SOAK_FAULTS   ?= kill,pause,restart

.PHONY: build deps test test-compose test-go test-integration test-peers test-kfake bench soak kfake check-cmd clean

check-cmd:
	@if [ ! -d cmd/moldau ]; then \
	  echo "ERROR: cmd/moldau does not exist yet: there is no moldau binary to build or test." >&2; \
	  echo "       ('make test-kfake' runs the integration suites against franz-go's kfake.)" >&2; \
	  exit 1; \
	fi

build: check-cmd
	$(GO) build -o bin/moldau ./cmd/moldau

kfake:
	$(GO) build -o bin/kfake ./bench/kfake

test: check-cmd deps test-compose test-go test-integration

deps:
	@test/deps.sh

test-compose:
	@test/compose.sh

test-go:
	$(GO) vet ./...
	$(GO) test -race -timeout $(GOTEST_TIMEOUT) $(GOTEST_FLAGS) ./...

# test/java.sh starts its own broker on a free port with a fresh data dir (test/lib.sh).
test-integration: build
	env -u BOOTSTRAP BROKER_IMPL=moldau test/java.sh

# ../shared/peers exists beside the team's clones and CI's, not in a user's clone.
test-peers: build
	env -u BOOTSTRAP BROKER_IMPL=moldau test/peers.sh

test-kfake: kfake
	@status=0; \
	env -u BOOTSTRAP BROKER_IMPL=kfake test/peers.sh || status=1; \
	env -u BOOTSTRAP BROKER_IMPL=kfake test/java.sh || status=1; \
	exit $$status

bench: check-cmd
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./...

# TestVerifySoak in test/integration: moldau verify --nodes $(SOAK_NODES) --faults $(SOAK_FAULTS)
# for $(SOAK_DURATION); fails on anything acknowledged lost, duplicated or reordered.
soak: check-cmd
	MOLDAU_SOAK=1 MOLDAU_SOAK_NODES=$(SOAK_NODES) MOLDAU_SOAK_DURATION=$(SOAK_DURATION) MOLDAU_SOAK_FAULTS=$(SOAK_FAULTS) \
	  $(GO) test -count=1 -timeout 2h -v -run '^TestVerifySoak$$' ./test/integration

clean:
	rm -rf bin test/java/target examples/spring-kafka/target
