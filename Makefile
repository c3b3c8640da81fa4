# jitai: just-in-time adaptive intervention engine.
GO          ?= go
BIN         := bin/jitai
STUDIES     ?= policies/examples
DATA        ?= ./data
ADDR        ?= 127.0.0.1:8080
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run run-redis test test-race bench lint fmt clean

## build: compile the engine to bin/jitai
build:
	$(GO) build -o $(BIN) ./cmd/jitai

## run: build, then serve the example studies on 127.0.0.1:8080 with the embedded store under ./data
run: build
	./$(BIN) serve --addr $(ADDR) --studies $(STUDIES) --data $(DATA)

## run-redis: build, then serve the example studies with the Redis store (REDIS_URL, default the local Redis)
REDIS_URL ?= redis://127.0.0.1:6379/0
run-redis: build
	./$(BIN) serve --addr $(ADDR) --studies $(STUDIES) --store redis --redis-url $(REDIS_URL)

## test: vet, format check, unit/API/crash tests and the example studies' Rego tests
test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 ./...

## test-race: the tests under the race detector (slower)
test-race:
	$(GO) test -race -count=1 ./...

## bench: benchmarks of the decision path, policy evaluation, store and randomisation
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./engine/... ./experiments/... ./interventions/...

## lint: gofmt, go vet and staticcheck
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
