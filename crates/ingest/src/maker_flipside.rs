//! `maker-flipside`: the MakerDAO vault export set from Flipside (one folder, one file per action).
//!
//! Each file is read through a mapping shipped in `fixtures/mappings/maker-*.toml`, so the
//! per-file rules stay declarative and a user can reproduce any of them with the `csv` kind. What
//! this module adds is what spans files:
//! - finding the files in the folder by name;
//! - the ilk of files without an `ILK` column (mints, repayments, liquidations), taken from the
//!   vault-creation file, which must name exactly one ilk;
//! - the Cat-to-Dog switch: `DAI_REPAYED_AMOUNT` is the Cat `tab` for bites and the Dog `due` for
//!   barks, and Dog/Clipper are live from the first block with a `DOG.` or `CLIPPER.` parameter
//!   change in the parameter file (2021-05-06 for ETH-B).
//!
//! Must never: guess a file by position, or drop a row because it repeats another (the export
//! has no transaction or log index, and identical rows are real: vault #21348 was bitten 363
//! times in 50k-DAI lots on 2021-04-28).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cascade_events::{Id, Payload};

use crate::batch::{Context, Rejects, SourceBatch};
use crate::error::IngestError;
use crate::mapping::Mapping;

/// One file of the export set.
struct Role {
    /// What the file holds, for messages.
    what: &'static str,
    /// Lower-case fragments, any of which identifies the file by name.
    names: &'static [&'static str],
    /// The mapping file that reads it, and its text.
    mapping: (&'static str, &'static str),
}

/// The files, in reading order: the parameter file first (it decides the Cat/Dog switch), the
/// vault creations second (they decide the ilk).
const ROLES: [Role; 7] = [
    Role {
        what: "parameter changes",
        names: &["parameter"],
        mapping: (
            "maker-parameter-changes.toml",
            include_str!("../../../fixtures/mappings/maker-parameter-changes.toml"),
        ),
    },
    Role {
        what: "vault creations",
        names: &["creation"],
        mapping: (
            "maker-vault-creations.toml",
            include_str!("../../../fixtures/mappings/maker-vault-creations.toml"),
        ),
    },
    Role {
        what: "deposits",
        names: &["deposit"],
        mapping: (
            "maker-vault-deposits.toml",
            include_str!("../../../fixtures/mappings/maker-vault-deposits.toml"),
        ),
    },
    Role {
        what: "withdrawals",
        names: &["withdrawal"],
        mapping: (
            "maker-vault-withdrawals.toml",
            include_str!("../../../fixtures/mappings/maker-vault-withdrawals.toml"),
        ),
    },
    Role {
        what: "DAI mints",
        names: &["borrow", "mint"],
        mapping: (
            "maker-dai-mints.toml",
            include_str!("../../../fixtures/mappings/maker-dai-mints.toml"),
        ),
    },
    Role {
        what: "DAI repayments",
        names: &["repay"],
        mapping: (
            "maker-dai-repayments.toml",
            include_str!("../../../fixtures/mappings/maker-dai-repayments.toml"),
        ),
    },
    Role {
        what: "liquidations",
        names: &["liquidation"],
        mapping: (
            "maker-liquidations.toml",
            include_str!("../../../fixtures/mappings/maker-liquidations.toml"),
        ),
    },
];

/// The block Dog/Clipper went live when the parameter file has no `DOG.`/`CLIPPER.` row: never,
/// within the export's window, so every liquidation is a Cat bite.
const DOG_NEVER: u64 = u64::MAX;

/// Reads a Maker Flipside export folder.
pub fn read(folder: &Path, context: &Context<'_>) -> Result<SourceBatch, IngestError> {
    let files = input_files(folder)?;
    let mut batch = SourceBatch::new(context.source);
    let mut rejects = Rejects::new(context.skip_invalid);

    // Parameter changes: their DOG/CLIPPER rows decide how liquidations are read.
    let [
        params,
        creations,
        deposits,
        withdrawals,
        mints,
        repayments,
        liquidations,
    ] = &files;
    builtin(&ROLES[0])?.read_into(params, context, &mut rejects, &mut batch)?;
    let dog_from = dog_from_block(batch.events.iter());
    match dog_from {
        Some(block) => batch
            .report
            .count(&format!("Dog/Clipper live from block {block}"), 1),
        None => batch
            .report
            .count("Dog/Clipper never live in the parameter file", 1),
    }

    // Vault creations: they name the ilk of the files that do not.
    let opened_from = batch.events.len();
    builtin(&ROLES[1])?.read_into(creations, context, &mut rejects, &mut batch)?;
    let ilk = single_ilk(creations, batch.events.iter_from(opened_from))?;
    let vaults: BTreeSet<Id> = batch
        .events
        .iter_from(opened_from)
        .filter_map(|event| match &event.payload {
            Payload::VaultOpen(open) => Some(open.account),
            _ => None,
        })
        .collect();

    let actions_from = batch.events.len();
    for (role, path) in
        ROLES[2..]
            .iter()
            .zip([deposits, withdrawals, mints, repayments, liquidations])
    {
        let mut mapping = builtin(role)?;
        mapping.set_constant("market", &ilk.to_string());
        mapping.set_dog_from_block(Some(dog_from.unwrap_or(DOG_NEVER)));
        mapping.read_into(path, context, &mut rejects, &mut batch)?;
    }

    let mut unknown_vault = 0;
    for event in batch.events.iter_from(actions_from) {
        let account = match &event.payload {
            Payload::Deposit(change)
            | Payload::Withdraw(change)
            | Payload::Borrow(change)
            | Payload::Repay(change) => change.account,
            Payload::Liquidation(liquidation) => {
                let bark = matches!(
                    liquidation.detail,
                    cascade_events::LiquidationDetail::MakerDog { .. }
                );
                batch.report.count(
                    if bark {
                        "liquidations read as Dog barks (due)"
                    } else {
                        "liquidations read as Cat bites (tab)"
                    },
                    1,
                );
                liquidation.account
            }
            _ => continue,
        };
        if !vaults.contains(&account) {
            unknown_vault += 1;
        }
    }
    if unknown_vault > 0 {
        batch.report.count(
            "actions on vaults missing from the creation file",
            unknown_vault,
        );
    }
    batch.report.rejected = rejects.into_rows();
    Ok(batch)
}

/// Parses one of the built-in mappings (a failure is a bug in a shipped file, reported as such).
fn builtin(role: &Role) -> Result<Mapping, IngestError> {
    let (name, text) = role.mapping;
    Mapping::from_toml(Path::new(name), text)
}

/// The export files of `folder` in reading order: parameter changes, vault creations, deposits,
/// withdrawals, DAI mints, DAI repayments, liquidations.
pub fn input_files(folder: &Path) -> Result<[PathBuf; 7], IngestError> {
    let io = |source| IngestError::Io {
        path: folder.to_owned(),
        source,
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()).map_err(io))
        .collect::<Result<_, _>>()?;
    names.retain(|path| {
        path.extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"))
            && path.is_file()
    });
    names.sort();
    let mut found = Vec::with_capacity(ROLES.len());
    for role in &ROLES {
        let matching: Vec<&PathBuf> = names
            .iter()
            .filter(|path| {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_lowercase())
                    .unwrap_or_default();
                role.names.iter().any(|fragment| name.contains(fragment))
            })
            .collect();
        match matching.as_slice() {
            [one] => found.push((*one).clone()),
            [] => {
                return Err(IngestError::Source {
                    path: folder.to_owned(),
                    message: format!(
                        "no {} file (a .csv whose name contains {})",
                        role.what,
                        role.names
                            .iter()
                            .map(|n| format!("{n:?}"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                });
            }
            several => {
                return Err(IngestError::Source {
                    path: folder.to_owned(),
                    message: format!(
                        "several {} files: {}",
                        role.what,
                        several
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    }
    found.try_into().map_err(|_| IngestError::Source {
        path: folder.to_owned(),
        message: "internal: file roles do not add up".into(),
    })
}

/// The first block with a Dog or Clipper parameter change: Liquidations 2.0 is live from there.
fn dog_from_block(events: impl Iterator<Item = cascade_events::Event>) -> Option<u64> {
    events
        .filter(|event| match &event.payload {
            Payload::ParamChange(change) => {
                let name = change.param.as_str();
                name.starts_with("DOG.") || name.starts_with("CLIPPER.")
            }
            _ => false,
        })
        .filter_map(|event| event.block)
        .min()
}

/// The one ilk the vault-creation file names.
fn single_ilk(
    file: &Path,
    opens: impl Iterator<Item = cascade_events::Event>,
) -> Result<Id, IngestError> {
    let ilks: BTreeSet<Id> = opens
        .filter_map(|event| match &event.payload {
            Payload::VaultOpen(open) => Some(open.market),
            _ => None,
        })
        .collect();
    let mut iter = ilks.iter();
    match (iter.next(), iter.next()) {
        (Some(ilk), None) => Ok(*ilk),
        (None, _) => Err(IngestError::Source {
            path: file.to_owned(),
            message: "no vault creation rows: the ilk of the mint, repayment and liquidation files is unknown".into(),
        }),
        (Some(_), Some(_)) => Err(IngestError::Source {
            path: file.to_owned(),
            message: format!(
                "vaults of several ilks ({}): the mint, repayment and liquidation files have no ILK column to tell them apart",
                ilks.iter().map(Id::to_string).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}
