//! Replays every seed (made from the fixtures) and every input kept in `tests/fuzz/regressions/` (the
//! crashes the fuzzers found, each fixed) through its target: a plain `cargo test` keeps found
//! bugs fixed without a fuzzing engine.

use std::path::{Path, PathBuf};

use cascade_fuzz::{TARGETS, Target};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &Target, inputs: &[PathBuf]) {
    for input in inputs {
        let data = std::fs::read(input).expect("an input file");
        let outcome = std::panic::catch_unwind(|| (target.run)(&data));
        assert!(
            outcome.is_ok(),
            "target {} panicked on {}",
            target.name,
            input.display()
        );
    }
}

#[test]
fn every_seed_runs_through_its_target() {
    let seeds = tempfile::tempdir().expect("a temporary directory");
    cascade_fuzz::seeds::write(seeds.path());
    for target in TARGETS {
        let inputs = files(&seeds.path().join(target.name));
        assert!(!inputs.is_empty(), "no seed for target {}", target.name);
        replay(target, &inputs);
    }
}

#[test]
fn every_crash_found_stays_fixed() {
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut replayed = 0;
    for target in TARGETS {
        let inputs = files(&regressions.join(target.name));
        replayed += inputs.len();
        replay(target, &inputs);
    }
    eprintln!("{replayed} regression inputs replayed");
}
