# envelope: end-to-end payload encryption for Temporal.
SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -buildvcs=false
# An execution count, not a duration: with a duration, Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded" at
# the deadline on a loaded machine (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 30000x
PKGS := ./...

.PHONY: all build tools test unit fuzz bench lint demo clean typescript drill

all: build

build:
	$(GO) build -o bin/codec-server ./cmd/codec-server

## tools: the real temporal CLI, Vault, UI server, local-kms and chromium: taken from PATH, else built into bin/ (once)
tools:
	@./scripts/tools.sh

## test: vet, race tests (unit and integration against real components), short fuzz runs, the failure drills
test: tools build typescript
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 45m $(PKGS)
	$(MAKE) fuzz
	$(MAKE) drill
	cd deploy && $(GO) vet ./... && $(GO) test -count=1 ./...
	cd internal/oidcprovider && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) test -count=1 ./...

## typescript: the TypeScript package (typescript/): npm ci from its lock file, then its tests
typescript:
	cd typescript && npm ci --no-audit --no-fund && npm test

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./codec
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshalPayload$$' -fuzztime $(FUZZTIME) ./codec/internal/envelope
	$(GO) test -run '^$$' -fuzz '^FuzzParseHeader$$' -fuzztime $(FUZZTIME) ./codec/internal/envelope
	$(GO) test -run '^$$' -fuzz '^FuzzObjects$$' -fuzztime $(FUZZTIME) ./codec/internal/envelope
	$(GO) test -run '^$$' -fuzz '^FuzzParseKeyFile$$' -fuzztime $(FUZZTIME) ./keyring
	$(GO) test -run '^$$' -fuzz '^FuzzReadStaticKey$$' -fuzztime $(FUZZTIME) ./cmd/codec-server
	$(GO) test -run '^$$' -fuzz '^FuzzParseKeyID$$' -fuzztime $(FUZZTIME) ./keyring/vault
	$(GO) test -run '^$$' -fuzz '^FuzzParseKeyID$$' -fuzztime $(FUZZTIME) ./keyring/awskms
	$(GO) test -run '^$$' -fuzz '^FuzzDirUnwrap$$' -fuzztime $(FUZZTIME) ./keyring/subject
	$(GO) test -run '^$$' -fuzz '^FuzzResolveNamespace$$' -fuzztime $(FUZZTIME) ./codecserver
	$(GO) test -run '^$$' -fuzz '^FuzzParsePermissions$$' -fuzztime $(FUZZTIME) ./codecserver
	$(GO) test -run '^$$' -fuzz '^FuzzMarshalPayloads$$' -fuzztime $(FUZZTIME) ./codecserver
	$(GO) test -run '^$$' -fuzz '^FuzzTooManyPayloads$$' -fuzztime $(FUZZTIME) ./codecserver
	$(GO) test -run '^$$' -fuzz '^FuzzZlibDecode$$' -fuzztime $(FUZZTIME) ./codec
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeDocuments$$' -fuzztime $(FUZZTIME) ./cmd/codec-server
	$(GO) test -run '^$$' -fuzz '^FuzzScanBodyMetadata$$' -fuzztime $(FUZZTIME) ./codecserver
	$(GO) test -run '^$$' -fuzz '^FuzzScanBodyExternal$$' -fuzztime $(FUZZTIME) ./codecserver
	$(GO) test -run '^$$' -fuzz '^FuzzClaimPermissions$$' -fuzztime $(FUZZTIME) ./codecserver
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshalPayloads$$' -fuzztime $(FUZZTIME) ./codecserver
	$(GO) test -run '^$$' -fuzz '^FuzzNormalize$$' -fuzztime $(FUZZTIME) ./blindindex
	$(GO) test -run '^$$' -fuzz '^FuzzParseHMAC$$' -fuzztime $(FUZZTIME) ./keyring/vault

## drill: the failure drills under load (docs/OPERATIONS.md "Failure drills"; make test runs it): a three-node Vault
## cluster, the codec server, faults. ~7 minutes; DRILL_FAULT, DRILL_AFTER, DRILL_BEFORE,
## DRILL_RECOVER_MAX (durations) and DRILL_RATE (load factor) tune them, DRILL_REPORT=F appends the figures to F.
drill: build
	@./scripts/tools.sh vault
	$(GO) test -tags drill -count=1 -v -timeout 40m -run '^TestDrill' ./e2e/drills

## bench: the benchmarks behind BENCHMARKS.md
bench: tools
	./scripts/bench.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

## demo: Temporal dev server + UI, the codec server on its embedded default, worker and starter.
## Needs only Go and the temporal CLI (from PATH, else built into bin/ once).
demo: build
	@./scripts/tools.sh temporal
	@./scripts/demo.sh

clean:
	rm -rf bin .data artifacts

## demo-sso: the Web UI with OIDC sign-in in front of the codec server on HTTPS (see scripts/demo-sso.sh)
.PHONY: demo-sso
demo-sso: build
	@./scripts/tools.sh temporal ui-server
	@./scripts/demo-sso.sh
