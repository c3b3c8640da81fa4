# jitai: just-in-time adaptive intervention engine.
GO          ?= go
BIN         := bin/jitai
STUDIES     ?= policies/examples
DATA        ?= ./data
ADDR        ?= 127.0.0.1:8080
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.DEFAULT_GOAL := build

.PHONY: help build run run-redis test test-race bench bench-export lint lint-openapi fmt clean plugins run-plugins proto docs

## help: list the make targets
help:
	@sed -n 's/^## \([A-Za-z0-9_-]*\): \(.*\)/\1\t\2/p' $(MAKEFILE_LIST) | awk -F '\t' '{ printf "  %-16s %s\n", $$1, $$2 }'

## build: compile the engine to bin/jitai (stamped with the VCS revision when built from a clone)
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/jitai

## run: build, then serve the example studies on 127.0.0.1:8080 with the embedded store under ./data
run: build
	./$(BIN) serve --addr $(ADDR) --studies $(STUDIES) --data $(DATA)

## plugins: build the example plugins (plugins/examples) into bin/plugins, with their SHA256SUMS
PLUGINS   ?= thompson sleepdebt alertfile
SHA256SUM ?= sha256sum
plugins:
	@mkdir -p bin/plugins
	@for p in $(PLUGINS); do echo "$(GO) build -trimpath -o bin/plugins/$$p ./plugins/examples/$$p"; \
	  $(GO) build -trimpath -o bin/plugins/$$p ./plugins/examples/$$p || exit 1; done
	cd bin/plugins && $(SHA256SUM) $(PLUGINS) > SHA256SUMS && cat SHA256SUMS

## run-plugins: build, then serve the example plugin study (plugins/examples/stress-mrt-plugins) with its plugins
run-plugins: build plugins
	./$(BIN) serve --addr $(ADDR) --studies plugins/examples --data $(DATA)

## proto: regenerate plugins/proto from plugin.proto (needs protoc)
## The generated code is committed, so building and testing never need protoc.
## protoc-gen-go is the version in go.mod.
PROTOC_GEN_GO_GRPC ?= google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
proto:
	@mkdir -p bin/tools
	$(GO) build -o bin/tools/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	GOBIN=$(CURDIR)/bin/tools $(GO) install $(PROTOC_GEN_GO_GRPC)
	protoc -I plugins/proto \
	  --plugin=protoc-gen-go=bin/tools/protoc-gen-go --go_out=plugins/proto --go_opt=paths=source_relative \
	  --plugin=protoc-gen-go-grpc=bin/tools/protoc-gen-go-grpc --go-grpc_out=plugins/proto --go-grpc_opt=paths=source_relative \
	  plugins/proto/plugin.proto

## run-redis: build, then serve the example studies with the Redis store (REDIS_URL, default the local Redis)
REDIS_URL ?= redis://127.0.0.1:6379/0
run-redis: build
	./$(BIN) serve --addr $(ADDR) --studies $(STUDIES) --store redis --redis-url $(REDIS_URL)

## test: vet, format check, unit/API/crash tests and the example studies' Rego tests
test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...

## test-race: the tests under the race detector (slower)
test-race:
	$(GO) test -race -count=1 -timeout 60m ./...

## bench: benchmarks of the decision path, policy evaluation, store, randomisation and plugin calls
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./engine/... ./experiments/... ./interventions/... ./plugins/...

## bench-export: time the export of a study (experiments/export): Build per row on 20,000 stored
## decisions, and writing 1,000,000 decision rows to CSV and to Parquet, with allocations
bench-export:
	$(GO) test -run '^$$' -bench 'BenchmarkExport$$|BenchmarkWrite1M' -benchmem -benchtime 3x ./experiments/export/

## lint: gofmt, go vet and staticcheck
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## docs: regenerate the CLI reference in docs/cli from the commands (a test fails when it is stale)
docs:
	rm -f docs/cli/*.md
	$(GO) run ./cmd/jitai gen-docs docs/cli

## lint-openapi: redocly lint of engine/api/openapi.json (0 errors) and a type check of its openapi-typescript client
## The tools are pinned in .ci/openapi/package-lock.json (npm ci when missing; needs Node.js 20.19+
## and npm). go test ./engine/api runs the same script (TestOpenAPIStrictTools), so make test does too.
lint-openapi:
	bash .ci/openapi-lint

## fmt: gofmt every Go file
fmt:
	gofmt -w $$(git ls-files '*.go')

## clean: remove bin/
clean:
	rm -rf bin

## bench-redis: decisions/s, p50 and p99 of jitai serve, embedded store then Redis store
## Both under the same load (cmd/jitai-load; BENCH_CONCURRENCY workers, BENCH_DURATION each);
## the Redis store at BENCH_REDIS_URL.
BENCH_REDIS_URL    ?= redis://127.0.0.1:6379/15
BENCH_CONCURRENCY  ?= 16
BENCH_DURATION     ?= 20s
BENCH_PARTICIPANTS ?= 1000
.PHONY: bench-redis
bench-redis: build
	$(GO) build -o bin/jitai-load ./cmd/jitai-load
	STUDIES=$(STUDIES) BENCH_REDIS_URL=$(BENCH_REDIS_URL) BENCH_CONCURRENCY=$(BENCH_CONCURRENCY) \
	  BENCH_DURATION=$(BENCH_DURATION) BENCH_PARTICIPANTS=$(BENCH_PARTICIPANTS) \
	  bash cmd/jitai-load/bench-redis.sh $(BIN) bin/jitai-load

## bench-load: the engine against OPA's own server, same policy and inputs (cmd/jitai-bench)
## The engine (embedded store with durable recording, then the Redis store) against
## OPA's own server (opa run --server, built from the OPA module at the version in go.mod) on the
## same policy and the engine's own policy inputs, one after the other, each at every
## BENCH_LOAD_CONCURRENCY, with the same closed-loop driver (cmd/jitai-bench). Prints
## decisions/s, p50, p99 and the ratio engine/OPA. BENCH_LOAD_REDIS_URL's database is flushed.
BENCH_LOAD_REDIS_URL   ?= redis://127.0.0.1:6379/13
BENCH_LOAD_CONCURRENCY ?= 16,64
BENCH_LOAD_DURATION    ?= 15s
BENCH_LOAD_WARMUP      ?= 3s
.PHONY: bench-load
bench-load: build
	$(GO) build -o bin/opa github.com/open-policy-agent/opa
	$(GO) build -o bin/jitai-bench ./cmd/jitai-bench
	./bin/jitai-bench --jitai $(BIN) --opa bin/opa --studies $(STUDIES) --redis-url $(BENCH_LOAD_REDIS_URL) \
	  --concurrency $(BENCH_LOAD_CONCURRENCY) --duration $(BENCH_LOAD_DURATION) --warmup $(BENCH_LOAD_WARMUP)

## bench-schedule: the trial clock at scale: 100,000 participants share one scheduled point (issue 13)
## cmd/jitai-clockbench, embedded store (one engine), then Redis (BENCH_SCHEDULE_ENGINES engines in one
## process, each with its own store): seconds from the point's instant to the last record and to the
## last webhook delivery (a local receiver verifies every Standard Webhooks signature and counts
## distinct ids), CPU, and memory per 100,000 participants. Redis: a private redis-server on a free
## port, or BENCH_SCHEDULE_REDIS_URL (its database is flushed).
BENCH_SCHEDULE_PARTICIPANTS ?= 100000
BENCH_SCHEDULE_ENGINES      ?= 3
BENCH_SCHEDULE_REDIS_URL    ?=
.PHONY: bench-schedule
bench-schedule:
	$(GO) build -o bin/jitai-clockbench ./cmd/jitai-clockbench
	./bin/jitai-clockbench --store sqlite --participants $(BENCH_SCHEDULE_PARTICIPANTS) --studies $(STUDIES)
	./bin/jitai-clockbench --store redis --participants $(BENCH_SCHEDULE_PARTICIPANTS) --studies $(STUDIES) \
	  --engines $(BENCH_SCHEDULE_ENGINES) --redis-url '$(BENCH_SCHEDULE_REDIS_URL)'

## simulate-bench: time the 225,000-decision simulation of stress-mrt (target: under 2 minutes)
## 500 participants x 90 days x 5 scheduled points (and the app point on_demand on about
## half the days, some 22,500 decisions more); the report goes to SIM_OUT.
SIM_OUT ?= /tmp/jitai-simulate-bench
.PHONY: simulate-bench
simulate-bench: build
	time ./$(BIN) simulate --study-dir $(STUDIES)/stress-mrt --participants 500 --days 90 --seed 1 --out $(SIM_OUT)
