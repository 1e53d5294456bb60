#!/usr/bin/env bash
# Runs every measurement behind BENCHMARKS.md. Each comparison runs both
# sides in the same process, interleaved, and is reported as a ratio; the
# machine is shared and absolute numbers drift from run to run.
# COUNT (default 10) sets the -count of the codec benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-10}
out=${BENCH_OUT:-artifacts/bench}
mkdir -p "$out"

echo "== codec: encode/decode vs raw AES-256-GCM (median of $COUNT runs)"
go test -run '^$' -bench . -benchmem -count "$COUNT" -benchtime 0.5s ./codec | tee "$out/codec.txt" | ./scripts/benchratio.sh

echo
echo "== codec server: 100 x 1 KiB decode vs the SDK handler, the CLI's one-payload request (interleaved), 2,000 x 1 KiB in one request vs one by one"
go test -run '^$' -bench . -benchmem -benchtime 2s -count 5 ./codecserver | tee "$out/codecserver.txt" | grep -E '^Benchmark'

echo
echo "== codec server load: 32 clients, servers taking turns (100 x 1 KiB and one payload); the real binary's peak memory"
go test -tags loadtest -count=1 -run 'TestLoadCompareSDK|TestLoadBinary|TestLoadMemory' -v ./codecserver ./cmd/codec-server | tee "$out/load.txt" | grep -vE '^(=== RUN|--- PASS|PASS|ok)'

echo
echo "== temporal workflow show of a 1,501-event history through each codec server (real dev server and CLI: make tools first)"
go test -tags loadtest -count=1 -run 'TestLoadCLIWorkflowShow' -v -timeout 10m ./cmd/codec-server | tee "$out/cli.txt" | grep -vE '^(=== RUN|--- PASS|PASS|ok)'

echo
echo "== compression: round trip with and without Options.Compress"
go test -run '^$' -bench BenchmarkCompressRoundTrip -benchmem -benchtime 300ms -count 3 ./codec | tee "$out/compress.txt" | grep -E '^Benchmark'

echo
echo "== data subject keys vs namespace keys; Vault calls for 10,000 payloads over 100 subjects (real Vault)"
go test -run '^$' -bench 'BenchmarkSeal|BenchmarkOpen|BenchmarkHandle' -benchmem -count 5 -benchtime 0.3s ./keyring/subject/ | tee "$out/subject.txt" | grep -E '^Benchmark'
go test -count=1 -v -run TestVaultCallsPer10000Payloads ./keyring/subject/ | tee "$out/subject-vault.txt" | grep -iE 'calls|^---'

echo
echo "== Vault transit calls for 10,000 payloads (real Vault: make tools first)"
go test -count=1 -v -run 'TestVault/10000' ./keyring/vault/ | tee "$out/vault.txt" | grep 'vault calls'
