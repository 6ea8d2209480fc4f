# opsbot — the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
GOFLAGS ?=
PKGS := ./...

.PHONY: run build build-load test lint unit fuzz bench bench-go test-faults test-browser teams-package migrate clean

## run: start opsbot with everything it needs (finds or starts PostgreSQL)
run: build
	@./scripts/run.sh

## build: compile bin/opsbot
build:
	$(GO) build -o bin/opsbot ./cmd/opsbot

## test: formatting, vet, staticcheck, the race-enabled suite on real PostgreSQL and a short fuzz run
test: lint unit fuzz

# The fault tests (build tag faults) are vetted and checked with the rest.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags faults $(PKGS)
	$(GO) tool staticcheck -tags faults $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 9m $(PKGS)

## fuzz: each fuzz target for its time, starting from its committed seed corpus
## (testdata/fuzz/<target>; a failing input is written there too). The time
## includes re-running the corpus; FuzzREST's workers each create and migrate a
## database first, hence its longer time.
FUZZ_TARGETS ?= FuzzREST:./adapters/httpapi:20s FuzzParseCursor:./conversations:5s FuzzRedact:./redact:5s \
	FuzzParseActivity:./adapters/teams:5s FuzzAuthenticate:./adapters/teams:5s
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  name=$${t%%:*}; rest=$${t#*:}; pkg=$${rest%%:*}; time=$${rest#*:}; \
	  echo "fuzz $$name ($$time)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $$time $$pkg; \
	done

## test-faults: opsbot serve as real processes on the fakes, through faults — killed after ack, database
## connections cut mid-turn, a hanging model, Slack 429 storms, SIGTERM with 100 turns in flight, two
## replicas on one database (about 3 minutes, mostly waiting for River's rescuer and a cron minute)
test-faults:
	$(GO) test -race -count=1 -tags faults -run '^TestFault' -timeout 10m -v ./cmd/opsbot/

## build-load: compile bin/opsbot-load, the load tool
build-load:
	$(GO) build -o bin/opsbot-load ./cmd/opsbot-load

## bench: the load tool on a fresh database with local fakes — REST, Slack (HTTP and Socket Mode), Teams,
## 1,000 turns waiting on a sleeping model — beside pgbench -N on the same server (about 3 minutes).
## BENCH_FLAGS passes flags, e.g. BENCH_FLAGS='--scenarios rest,slack --duration 5s --json'
BENCH_FLAGS ?=
bench: build build-load
	./bin/opsbot-load --opsbot bin/opsbot $(BENCH_FLAGS)

## bench-go: Go benchmarks against real PostgreSQL (figures for the issue notes)
bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 2s -timeout 30m $(PKGS)

## test-browser: the /admin dashboard in headless Chromium (/usr/bin/chromium, playwright-core);
## screenshot in test-results/dashboard.png
test-browser:
	$(GO) build -o bin/e2e-seedserver ./e2e/seedserver
	cd e2e && npm ci --no-audit --no-fund --loglevel=error
	cd e2e && SEEDSERVER=$(CURDIR)/bin/e2e-seedserver node --test dashboard.test.mjs

## teams-package: the Teams app zip an admin uploads, for the bot TEAMS_APP_ID
teams-package:
	@mkdir -p bin
	$(GO) run ./manifests/teams -app-id "$(TEAMS_APP_ID)" -out bin/opsbot-teams.zip

migrate: build
	./bin/opsbot migrate

clean:
	rm -rf bin
