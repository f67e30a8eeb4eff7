//! Keeps `docs/architecture.md` true: the crates depend on each other only in the allowed
//! direction, and nothing depends on the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace root")
        .to_path_buf()
}

/// The workspace crates each crate's `[dependencies]` names (dev-dependencies may reach further:
/// a benchmark may drive the engine with the synthetic generator).
fn workspace_dependencies() -> BTreeMap<String, Vec<String>> {
    let crates_dir = workspace_root().join("crates");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&crates_dir).expect("crates/ is readable") {
        let (name, deps) = package_dependencies(&entry.expect("directory entry").path());
        graph.insert(name, deps);
    }
    graph
}

/// The name of the package in `folder` and the workspace crates its `[dependencies]` names.
fn package_dependencies(folder: &Path) -> (String, Vec<String>) {
    let manifest_path = folder.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
    let manifest: toml::Table = text.parse().expect("manifest is TOML");
    let name = manifest["package"]["name"]
        .as_str()
        .expect("package name")
        .to_owned();
    let mut deps: Vec<String> = manifest
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|table| {
            table
                .keys()
                .filter(|k| k.starts_with("cascade-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    deps.sort();
    (name, deps)
}

#[test]
fn every_crate_of_the_brief_exists() {
    let names: Vec<String> = workspace_dependencies().into_keys().collect();
    assert_eq!(
        names,
        [
            "cascade-cli",
            "cascade-diff",
            "cascade-engine",
            "cascade-events",
            "cascade-ingest",
            "cascade-kafka",
            "cascade-log",
            "cascade-run"
        ]
    );
}

#[test]
fn dependencies_point_one_way() {
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("cascade-events", &[][..]),
        ("cascade-log", &["cascade-events"][..]),
        ("cascade-ingest", &["cascade-events", "cascade-log"][..]),
        ("cascade-run", &["cascade-events"][..]),
        (
            "cascade-engine",
            &["cascade-events", "cascade-log", "cascade-run"][..],
        ),
        (
            "cascade-diff",
            &["cascade-engine", "cascade-events", "cascade-run"][..],
        ),
        (
            "cascade-kafka",
            &["cascade-engine", "cascade-events", "cascade-log"][..],
        ),
        (
            "cascade-cli",
            &[
                "cascade-diff",
                "cascade-engine",
                "cascade-events",
                "cascade-ingest",
                "cascade-kafka",
                "cascade-log",
                "cascade-run",
            ][..],
        ),
    ]);
    for (name, deps) in workspace_dependencies() {
        let permitted = allowed
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} is not in docs/architecture.md"));
        for dep in &deps {
            assert!(
                permitted.contains(&dep.as_str()),
                "{name} depends on {dep}, which docs/architecture.md does not allow"
            );
        }
    }
}

#[test]
fn the_fuzz_targets_reach_only_the_libraries_they_fuzz() {
    let (name, deps) = package_dependencies(&workspace_root().join("tests/fuzz"));
    assert_eq!(name, "cascade-fuzz");
    assert_eq!(
        deps,
        [
            "cascade-engine",
            "cascade-events",
            "cascade-ingest",
            "cascade-log"
        ],
        "docs/architecture.md: fuzz depends on events, log, ingest and engine"
    );
    for (crate_name, crate_deps) in workspace_dependencies() {
        assert!(
            !crate_deps.iter().any(|dep| dep == "cascade-fuzz"),
            "{crate_name} depends on the fuzz targets"
        );
    }
}
