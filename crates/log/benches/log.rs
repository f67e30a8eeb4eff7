//! Criterion benchmarks of the log (filled in below).

fn main() {}
