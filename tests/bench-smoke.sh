#!/usr/bin/env bash
# Runs every criterion benchmark of the workspace in smoke mode: shrunken sizes
# (CASCADE_BENCH_SMOKE=1, honoured by the benches that build large inputs), criterion's --quick
# sampling and no plots. It catches a benchmark that stops compiling or panics; its numbers are
# not results (docs/benchmarks.md). Kafka benchmarks measure only when CASCADE_KAFKA_BROKERS is set.
set -euo pipefail
cd "$(dirname "$0")/.."
export CASCADE_BENCH_SMOKE=1
cargo bench --workspace --bench '*' -- --quick --noplot "$@"
