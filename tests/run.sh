#!/usr/bin/env bash
# Runs every test of the workspace, the Kafka ones against a real Apache Kafka broker.
#
# Starts a single-node broker (jars from Maven Central on first use) unless
# CASCADE_KAFKA_BROKERS already names one, runs `cargo test --workspace`, then a smoke run of every
# benchmark (each measured once, small sizes) so a benchmark that stops compiling or panics is
# caught, a short run of every fuzz target (5 s each; a crash fails the run), and stops the
# broker it started. Real-data tests read ../shared/data and skip with a
# notice when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

started_broker=""
stop_broker() {
    if [[ -n "$started_broker" ]]; then
        tests/kafka/kafka.sh stop || true
    fi
}
trap stop_broker EXIT

if [[ -z "${CASCADE_KAFKA_BROKERS:-}" ]]; then
    tests/kafka/kafka.sh start
    started_broker=yes
    CASCADE_KAFKA_BROKERS="$(tests/kafka/kafka.sh address)"
    export CASCADE_KAFKA_BROKERS
fi
echo "== Kafka broker at $CASCADE_KAFKA_BROKERS"

echo "== cargo test --workspace --no-fail-fast"
cargo test --workspace --no-fail-fast

echo "== benchmark smoke run (CASCADE_BENCH_SMOKE=1)"
CASCADE_BENCH_SMOKE=1 cargo bench --workspace --bench '*' -- --test

echo "== fuzz smoke run (tests/fuzz/run.sh 5: every target 5 s, fails on a crash)"
tests/fuzz/run.sh 5
