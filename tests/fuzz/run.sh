#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each with libFuzzer, on stable rustc.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]        default: 5 seconds, every target
#
# cargo-fuzz needs nightly for its sanitizers; the coverage instrumentation libFuzzer needs is
# stable (`-C passes=sancov-module` and LLVM's sanitizer-coverage options), so this builds the
# targets with the flags cargo-fuzz passes, minus `-Z`. `--target` keeps the flags off build
# scripts and proc macros; the separate target dir keeps the instrumented build from the normal
# one. The corpus grows in target/fuzz/corpus/<target> (seeded from the fixtures each run, kept
# between runs); a crash is written to tests/fuzz/artifacts/<target>/ and fails the run: fix it, then
# move the input to tests/fuzz/regressions/<target>/ so `cargo test -p cascade-fuzz` keeps it fixed.
# Prints the executions and crashes of each target.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The file-reading targets write each input to a scratch file: on tmpfs they run 20-40 times
# faster than on this disk.
if [[ -z "${TMPDIR:-}" && -w /dev/shm ]]; then
    export TMPDIR=/dev/shm
fi

seconds="${1:-5}"
shift || true
host="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="$PWD/target/fuzz"
export RUSTFLAGS="--cfg fuzzing -C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=4 \
-C llvm-args=-sanitizer-coverage-inline-8bit-counters -C llvm-args=-sanitizer-coverage-pc-table \
-C llvm-args=-sanitizer-coverage-trace-compares -C debug-assertions -C overflow-checks"

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    # The [[bin]] names in snake_case: the targets (the package and fuzz-seeds have hyphens).
    mapfile -t targets < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' tests/fuzz/Cargo.toml)
fi

seeds="$CARGO_TARGET_DIR/seeds"
rm -rf "$seeds"
env -u RUSTFLAGS -u CARGO_TARGET_DIR cargo run --quiet -p cascade-fuzz --bin fuzz-seeds -- "$seeds"
bins=()
for target in "${targets[@]}"; do
    bins+=(--bin "$target")
done
cargo build --release --quiet --target "$host" -p cascade-fuzz --features libfuzzer "${bins[@]}"

failed=0
for target in "${targets[@]}"; do
    corpus="$CARGO_TARGET_DIR/corpus/$target"
    artifacts="tests/fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    log="$CARGO_TARGET_DIR/$target.log"
    status=0
    "$CARGO_TARGET_DIR/$host/release/$target" "$corpus" "$seeds/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    crashes="$(grep -c '^artifact_prefix=.*Test unit written to' "$log" || true)"
    echo "fuzz $target: ${execs:-?} execs in ${seconds}s, ${crashes} crashes, corpus $(find "$corpus" -type f | wc -l) inputs"
    if [[ $status -ne 0 || $crashes -ne 0 ]]; then
        failed=1
        grep -E 'panicked|ERROR: libFuzzer|Test unit written' "$log" | head -5 || true
    fi
done
exit "$failed"
