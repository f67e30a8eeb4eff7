//! What the engine's slow benchmarks share: the `CASCADE_BENCH_SMOKE` switch and the sampling of
//! a group whose iterations take seconds.

use std::time::Duration;

use criterion::SamplingMode;
use criterion::measurement::WallTime;

/// Whether `CASCADE_BENCH_SMOKE` asks for a quick check that the benchmark runs.
pub fn smoke() -> bool {
    std::env::var_os("CASCADE_BENCH_SMOKE").is_some_and(|v| v != "0")
}

/// Ten flat samples over 30 seconds (smoke: 0.3 seconds).
pub fn configure_slow(group: &mut criterion::BenchmarkGroup<'_, WallTime>) {
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    if smoke() {
        group.warm_up_time(Duration::from_millis(50));
        group.measurement_time(Duration::from_millis(300));
    } else {
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(30));
    }
}
