# Moldau: the commands people (and CI) run.
#
#   make build             bin/moldau
#   make test              go vet + go test -race + integration suites against a fresh bin/moldau
#   make test-go           go vet + go test -race only
#   make test-integration  test/peers.sh and test/java.sh, each against its own fresh broker
#   make test-kfake        the integration suites against franz-go's kfake (validates the scripts)
#   make bench             Go benchmarks with -benchmem
#   make kfake             bin/kfake, the fake broker (go run ./bench/kfake -addr 127.0.0.1:9092)

GO            ?= go
GOTEST_TIMEOUT ?= 10m
GOTEST_FLAGS  ?=
BENCH         ?= .
BENCHTIME     ?= 1s

.PHONY: build test test-go test-integration test-kfake bench kfake check-cmd clean

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

test: check-cmd test-go test-integration

test-go:
	$(GO) vet ./...
	$(GO) test -race -timeout $(GOTEST_TIMEOUT) $(GOTEST_FLAGS) ./...

# Each suite starts its own broker on a free port with a fresh data dir (test/lib.sh); both run
# even when the first fails, and the target fails if either did.
test-integration: build
	@status=0; \
	env -u BOOTSTRAP BROKER_IMPL=moldau test/peers.sh || status=1; \
	env -u BOOTSTRAP BROKER_IMPL=moldau test/java.sh || status=1; \
	exit $$status

test-kfake: kfake
	@status=0; \
	env -u BOOTSTRAP BROKER_IMPL=kfake test/peers.sh || status=1; \
	env -u BOOTSTRAP BROKER_IMPL=kfake test/java.sh || status=1; \
	exit $$status

bench: check-cmd
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./...

clean:
	rm -rf bin test/java/target examples/spring-kafka/target
