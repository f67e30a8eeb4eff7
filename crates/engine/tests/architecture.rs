//! Keeps the engine's inner layering (docs/engine.md) true, by reading the `crate::` paths of
//! every source file: the replay core names no protocol; the protocol interface names no
//! protocol, nor the core that drives it, nor the counterfactual machinery built on top; the
//! shared lending pool model names no protocol (the protocols plug their rules into it), and the
//! lending protocols' rules name neither the core nor the counterfactual machinery.

use std::path::{Path, PathBuf};

/// The folders holding protocol models and the shared lending pool model.
const PROTOCOL_MODELS: &[&str] = &[
    "protocols",
    "protocols/aave",
    "protocols/compound",
    "protocols/maker",
    "lending",
];

/// Each layer (a folder of `src/`) and the top-level modules its code must not reach.
const RULES: &[(&str, &[&str])] = &[
    ("core", &["protocols", "counterfactual"]),
    ("protocol", &["protocols", "counterfactual", "core"]),
    ("lending", &["protocols", "counterfactual", "core"]),
    ("protocols/aave", &["counterfactual", "core"]),
    ("protocols/compound", &["counterfactual", "core"]),
];

fn rust_files(folder: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a line of code reaches through `crate::` (a `use` line, a `use` group
/// continued over several lines, or a path written inline). Comments do not count: a doc link
/// is not a dependency.
fn modules_named(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.push(name);
        }
        rest = after;
    }
    found
}

/// Every (file, line number, module) where a file under `src/<layer>/` reaches `forbidden`.
fn violations(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root.join(layer), &mut files);
    assert!(!files.is_empty(), "src/{layer} holds no source file");
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source is UTF-8");
        // A `use crate::{a, b::c}` group spans lines: its continuation lines start with a module
        // name and no `crate::`, so the group's text is read as one.
        let mut group = String::new();
        for (number, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("use crate::{") && !trimmed.contains('}') {
                group = trimmed.replace("use crate::{", "");
                continue;
            }
            let reached: Vec<String> = if !group.is_empty() {
                group.push_str(trimmed);
                if !trimmed.contains('}') {
                    continue;
                }
                let names = std::mem::take(&mut group);
                names
                    .split(',')
                    .filter_map(|part| {
                        let name: String = part
                            .trim()
                            .trim_start_matches('{')
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        (!name.is_empty()).then_some(name)
                    })
                    .collect()
            } else {
                modules_named(line)
            };
            for module in reached {
                if forbidden.contains(&module.as_str()) {
                    found.push(format!(
                        "{}:{}: src/{layer} reaches crate::{module}",
                        file.strip_prefix(&root).unwrap_or(&file).display(),
                        number + 1
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn the_core_and_the_protocol_interface_reach_only_the_layers_below() {
    for (layer, forbidden) in RULES {
        let found = violations(layer, forbidden);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}

#[test]
fn the_protocol_models_and_the_counterfactual_layer_are_where_the_rules_expect() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for module in PROTOCOL_MODELS
        .iter()
        .chain(&["counterfactual", "core", "protocol"])
    {
        assert!(
            root.join(module).is_dir(),
            "src/{module}/ is gone: update RULES and docs/engine.md"
        );
    }
}

#[test]
fn paths_are_read_from_code_not_comments() {
    assert_eq!(
        modules_named("use crate::protocols::maker::MakerParam;"),
        ["protocols"]
    );
    assert_eq!(
        modules_named("    let x = crate::aave::AaveModel::v2(); // crate::core"),
        ["aave"]
    );
    assert!(modules_named("//! [`crate::protocols::REGISTRY`]").is_empty());
}
