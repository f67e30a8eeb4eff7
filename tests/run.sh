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

# The fault-injection, SIGKILL and every-bit-flip suites print what they covered; cargo test hides
# a passing test's output, so they run on their own afterwards with --show-output.
reliability_suites=(every_file_operation_of_an_ingest_can_fail_or_crash sigkill_during_
    every_bit_flip_of_a_segment_and_its_index_is_detected)
echo "== cargo test --workspace --no-fail-fast (all but the reliability suites)"
cargo test --workspace --no-fail-fast -- "${reliability_suites[@]/#/--skip=}"

echo "== reliability suites, with their counts (docs/reliability.md)"
cargo test -p cascade-ingest --test faults -- --show-output "${reliability_suites[0]}"
cargo test -p cascade-cli --test kill -- --show-output "${reliability_suites[1]}"
cargo test -p cascade-log --test damage -- --show-output "${reliability_suites[2]}"

echo "== benchmark smoke run (CASCADE_BENCH_SMOKE=1)"
CASCADE_BENCH_SMOKE=1 cargo bench --workspace --bench '*' -- --test

echo "== fuzz smoke run (tests/fuzz/run.sh 5: every target 5 s, fails on a crash)"
tests/fuzz/run.sh 5
