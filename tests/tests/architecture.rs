//! Keeps `docs/architecture.md` true: the crates depend on each other only in the allowed
//! direction, and nothing depends on the binary, whether as a normal, a dev, a build or a
//! target-specific dependency. (The engine's inner layering is checked by
//! `crates/engine/tests/architecture.rs`.)

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

fn manifest(folder: &Path) -> toml::Table {
    let manifest_path = folder.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
    text.parse().expect("manifest is TOML")
}

fn package_name(manifest: &toml::Table) -> String {
    manifest["package"]["name"]
        .as_str()
        .expect("package name")
        .to_owned()
}

/// The workspace crates a dependency table (`dependencies`, `dev-dependencies`,
/// `build-dependencies`) of `manifest` names, including its `[target.'cfg(..)'.*]` forms.
fn workspace_crates_in(manifest: &toml::Table, table: &str) -> Vec<String> {
    let names = |deps: Option<&toml::Value>| -> Vec<String> {
        deps.and_then(toml::Value::as_table)
            .map(|t| {
                t.keys()
                    .filter(|k| k.starts_with("cascade-"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut deps = names(manifest.get(table));
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for target in targets.values() {
            deps.extend(names(target.get(table)));
        }
    }
    deps.sort();
    deps.dedup();
    deps
}

/// The name of the package in `folder` and the workspace crates its `[dependencies]` names.
fn package_dependencies(folder: &Path) -> (String, Vec<String>) {
    let manifest = manifest(folder);
    (
        package_name(&manifest),
        workspace_crates_in(&manifest, "dependencies"),
    )
}

/// Every workspace crate's dev- and build-dependencies on workspace crates.
fn test_and_build_dependencies() -> BTreeMap<String, Vec<String>> {
    let crates_dir = workspace_root().join("crates");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&crates_dir).expect("crates/ is readable") {
        let manifest = manifest(&entry.expect("directory entry").path());
        let mut deps = workspace_crates_in(&manifest, "dev-dependencies");
        deps.extend(workspace_crates_in(&manifest, "build-dependencies"));
        deps.sort();
        deps.dedup();
        graph.insert(package_name(&manifest), deps);
    }
    graph
}

/// Whether `from` reaches `to` through normal dependencies.
fn reaches(graph: &BTreeMap<String, Vec<String>>, from: &str, to: &str) -> bool {
    graph
        .get(from)
        .is_some_and(|deps| deps.iter().any(|dep| dep == to || reaches(graph, dep, to)))
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
        ("cascade-diff", &["cascade-events", "cascade-run"][..]),
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
fn dev_and_build_dependencies_point_the_same_way() {
    let normal = workspace_dependencies();
    for (name, deps) in test_and_build_dependencies() {
        for dep in &deps {
            assert_ne!(dep, "cascade-cli", "{name} depends on the binary");
            assert!(
                dep != &name && !reaches(&normal, dep, &name),
                "{name} has a dev or build dependency on {dep}, which depends on {name}: the arrow runs back up"
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
