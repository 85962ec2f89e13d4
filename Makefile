# cairn — developer tasks. Every target is a thin wrapper around go or a
# script in scripts/ or bench/, so each step can also be run by hand.

GO        ?= go
# The README's test command is `go test ./...`; the timeout bounds a hung test.
TESTFLAGS ?= -timeout 20m
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
# Arguments for bench/compare.sh, e.g. COMPARE_ARGS="-size 200MiB -runs 3 -files 10x".
COMPARE_ARGS ?=
# Core packages with benchmarks (those that exist yet).
BENCH_PKGS := $(addprefix ./,$(wildcard internal/chunker internal/crypto internal/repo internal/backup internal/restore))

.PHONY: all test lint bench fuzz cross compare ci

all: lint test

## test: run every test (the README's test command)
test:
	$(GO) test $(TESTFLAGS) ./...

## lint: gofmt check, go vet, staticcheck (skipped if it cannot be fetched)
lint:
	scripts/lint.sh

## bench: go test -bench for the core packages, MB/s beside the baselines
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) $(BENCH_PKGS)

## fuzz: a short run (FUZZTIME each) of every Fuzz* target in the module
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

## cross: build cmd/cairn and go vet for linux, darwin and windows (amd64)
cross:
	scripts/cross.sh

## compare: cairn vs restic vs borg on a generated corpus (see bench/compare.sh)
compare:
	bench/compare.sh $(COMPARE_ARGS)

## ci: what .ci/run does after installing packages
ci:
	.ci/run
