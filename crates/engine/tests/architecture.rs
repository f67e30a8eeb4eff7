//! Keeps the engine's inner layering (docs/engine.md) true, by reading the `crate::` paths of
//! every source file: the replay core names no protocol; the protocol interface names no
//! protocol, nor the core that drives it, nor the counterfactual machinery built on top; the
//! shared lending pool model names no protocol (the protocols plug their rules into it), the
//! protocols' models name neither the core nor the counterfactual machinery, the leverage
//! measures name no protocol, and the shared modules at the root of `src/` name none of the
//! layers above them.

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
    ("protocols/maker", &["counterfactual", "core"]),
    ("leverage", &["protocols", "counterfactual", "core"]),
    // The shared modules below every layer.
    ("oracle.rs", BELOW_THE_LAYERS),
    ("index.rs", BELOW_THE_LAYERS),
    ("slots.rs", BELOW_THE_LAYERS),
    ("math.rs", BELOW_THE_LAYERS),
    ("state.rs", BELOW_THE_LAYERS),
    ("run.rs", BELOW_THE_LAYERS),
];

/// What a shared module at the root of `src/` must not reach. Two root files are not shared
/// modules and have no rule: `error.rs` is the crate's error, which wraps every layer's (the
/// scenario error included), and `golden.rs` is the test-only harness that replays fixtures.
const BELOW_THE_LAYERS: &[&str] = &["core", "protocols", "counterfactual", "leverage", "lending"];

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

/// Every (file, line number, module) where a file under `src/<layer>/` (or the file
/// `src/<layer>`) reaches `forbidden`.
fn violations(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    if root.join(layer).is_file() {
        files.push(root.join(layer));
    } else {
        rust_files(&root.join(layer), &mut files);
    }
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
        .chain(&["counterfactual", "core", "protocol", "leverage"])
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

#[test]
fn the_scanner_finds_what_a_layer_does_reach() {
    // The core drives the models through the protocol interface, and the price book is shared:
    // a scanner that found nothing here would pass every rule above without reading a line.
    assert!(!violations("core", &["protocol"]).is_empty());
    assert!(!violations("oracle.rs", &["protocol"]).is_empty());
}
