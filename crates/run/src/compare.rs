//! What differs between a golden run file and a new replay, as `cascade check` reports it.
//!
//! A log that gains events (one more price file) renumbers every event after them, so nothing
//! here matches by `seq`: liquidations match by [`liquidation_identity`], unsafe episodes by
//! account and start, timeline points by time and market, health snapshots by moment and market.
//! What is left after matching is what really changed: liquidations that appeared or vanished,
//! verdicts and amounts that moved (beyond a relative tolerance), totals, settings (as the keys
//! that differ) and the state hash. Works on JSON values: the golden may come from an older build
//! or hold only some fields ([`project`], `--golden-fields`).

use std::collections::BTreeMap;

use cascade_events::Fixed;
use serde::Serialize;
use serde_json::{Map, Value};

/// The key a golden file restricted to some fields lists them under.
pub const GOLDEN_FIELDS_KEY: &str = "golden_fields";

/// The stable identity of a liquidation across two logs of the same history: its transaction
/// hash and log index where the source recorded them, else its time, protocol, market and
/// account (the log keeps no row identity of its sources). `origin` keeps a simulated liquidation
/// from matching a recorded one. Several liquidations with one identity (vault #21348 was bitten
/// 363 times in a day) are told apart by [`identities`].
pub fn liquidation_identity(item: &Value) -> String {
    let text = |field: &str| match item.get(field) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let place = item
        .get("tx_hash")
        .and_then(Value::as_str)
        .zip(item.get("log_index").and_then(Value::as_u64));
    identity_of(
        [
            &text("time"),
            &text("origin"),
            &text("protocol"),
            &text("market"),
            &text("account"),
        ],
        place,
    )
}

impl crate::LiquidationRecord {
    /// Its [`liquidation_identity`], from the typed record.
    pub fn identity(&self) -> String {
        identity_of(
            [
                &self.time.to_rfc3339(),
                self.origin.name(),
                self.protocol.name(),
                &self.market.to_string(),
                &self.account.to_string(),
            ],
            self.tx_hash.as_deref().zip(self.log_index.map(u64::from)),
        )
    }
}

/// [`liquidation_identity`] from its parts: time, origin, protocol, market, account, and the
/// transaction hash and log index where known.
pub fn identity_of(parts: [&str; 5], place: Option<(&str, u64)>) -> String {
    let mut id = parts.join(" ");
    if let Some((hash, index)) = place {
        id.push_str(&format!(" tx {hash}:{index}"));
    }
    id
}

/// Makes keys unique in list order: the second item with key `k` becomes `k (2)`, and so on.
pub fn identities(keys: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    keys.into_iter()
        .map(|key| {
            let count = seen.entry(key.clone()).or_default();
            *count += 1;
            if *count == 1 {
                key
            } else {
                format!("{key} ({count})")
            }
        })
        .collect()
}

/// How `cascade check` compares.
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    /// Relative tolerance for amounts and healths of matched liquidations, parts per million:
    /// a change of at most `|old| * ppm / 1e6` is counted, not listed. 0 compares exactly.
    pub tolerance_ppm: u64,
}

/// One key whose value differs: `old` or `new` is `None` when the key is absent on that side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyChange {
    /// Dotted path (`log.content_hash`, `totals.verdicts.explained`, `verdict`).
    pub key: String,
    /// Value in the golden file.
    pub old: Option<Value>,
    /// Value in this replay.
    pub new: Option<Value>,
}

/// A liquidation, unsafe episode or health snapshot that appeared, vanished or changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ItemChange {
    /// `appeared`, `vanished` or `changed`.
    pub change: &'static str,
    /// Its identity (time, origin, protocol, market, account for a liquidation).
    pub id: String,
    /// The fields that differ (changed items only).
    pub fields: Vec<KeyChange>,
}

/// Items of one list found in one run only, or in both with a difference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// In this replay only.
    pub appeared: usize,
    /// In the golden file only.
    pub vanished: usize,
    /// In both, with a field changed beyond the tolerance.
    pub changed: usize,
}

impl Counts {
    fn of(changes: &[ItemChange]) -> Counts {
        let count = |kind: &str| changes.iter().filter(|c| c.change == kind).count();
        Counts {
            appeared: count("appeared"),
            vanished: count("vanished"),
            changed: count("changed"),
        }
    }

    fn any(self) -> bool {
        self != Counts::default()
    }

    fn text(self) -> String {
        format!(
            "{} appeared, {} vanished, {} changed",
            self.appeared, self.vanished, self.changed
        )
    }
}

/// Counts first: what a reader needs before any detail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiffSummary {
    /// Liquidations found in both runs.
    pub liquidations_matched: usize,
    /// Liquidations appeared, vanished, changed.
    pub liquidations: Counts,
    /// Of the changed liquidations, how many changed verdict.
    pub verdicts_changed: usize,
    /// Matched items (liquidations, unsafe episodes, timeline points, health snapshots and
    /// samples) whose amounts moved within the tolerance only.
    pub within_tolerance: usize,
    /// Totals (and listed snapshot differences) that moved.
    pub totals_moved: usize,
    /// Settings keys (`log`, `window`, `scenario`, `config`, `schema_version`) that differ.
    pub settings_changed: usize,
    /// Unsafe episodes appeared, vanished or changed.
    pub unsafe_episodes: Counts,
    /// Timeline points appeared, vanished or changed.
    pub timeline_points: Counts,
    /// Health snapshots appeared, vanished or changed.
    pub health_snapshots: Counts,
    /// Health and leverage samples, ladder rungs and overlap tables (`health_over_time`,
    /// `leverage_over_time`, `liquidation_ladder`, `overlap`) appeared, vanished or changed.
    pub health_samples: Counts,
    /// Whether the final state hash differs.
    pub state_hash_changed: bool,
}

/// What differs between an expected (golden) run and an actual one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunDiff {
    /// Counts.
    pub summary: DiffSummary,
    /// Settings keys that differ, as dotted paths.
    pub settings: Vec<KeyChange>,
    /// Liquidations appeared, vanished or changed, in identity order.
    pub liquidations: Vec<ItemChange>,
    /// Totals and listed snapshot differences that moved, as dotted paths
    /// (`snapshot_differences.listed[0].snapshot.debt`).
    pub totals: Vec<KeyChange>,
    /// Unsafe episodes appeared, vanished or changed.
    pub unsafe_episodes: Vec<ItemChange>,
    /// Health snapshots appeared, vanished or changed.
    pub health_distribution: Vec<ItemChange>,
    /// Health and leverage samples, ladder rungs and overlap tables appeared, vanished or
    /// changed; ids start with the list's name.
    pub health_over_time: Vec<ItemChange>,
    /// The state hash, when it differs.
    pub state_hash: Option<KeyChange>,
}

impl RunDiff {
    /// True when nothing differs (amounts within the tolerance aside).
    pub fn is_empty(&self) -> bool {
        let s = &self.summary;
        !(s.liquidations.any()
            || s.totals_moved > 0
            || s.settings_changed > 0
            || s.unsafe_episodes.any()
            || s.timeline_points.any()
            || s.health_snapshots.any()
            || s.health_samples.any()
            || s.state_hash_changed)
    }

    /// The summary as short lines, liquidations first; sections without a difference are left
    /// out, except liquidations and totals.
    pub fn summary_lines(&self) -> Vec<String> {
        let s = &self.summary;
        let mut lines = vec![format!(
            "liquidations: {} matched, {} ({} verdict{})",
            s.liquidations_matched,
            s.liquidations.text(),
            s.verdicts_changed,
            if s.verdicts_changed == 1 { "" } else { "s" }
        )];
        lines.push(format!("totals moved: {}", s.totals_moved));
        if s.within_tolerance > 0 {
            lines.push(format!(
                "amounts moved within the tolerance only: {}",
                s.within_tolerance
            ));
        }
        if s.settings_changed > 0 {
            let mut sections: Vec<&str> = self
                .settings
                .iter()
                .map(|change| change.key.split('.').next().unwrap_or(""))
                .collect();
            sections.dedup();
            lines.push(format!(
                "settings changed: {} ({})",
                s.settings_changed,
                sections.join(", ")
            ));
        }
        for (name, counts) in [
            ("unsafe episodes", s.unsafe_episodes),
            ("timeline points", s.timeline_points),
            ("health snapshots", s.health_snapshots),
            ("health and leverage samples", s.health_samples),
        ] {
            if counts.any() {
                lines.push(format!("{name}: {}", counts.text()));
            }
        }
        if s.state_hash_changed {
            lines.push("state hash: changed".to_owned());
        }
        lines
    }

    /// Every detail as one short line each, in the order: settings, liquidations, totals,
    /// unsafe episodes, health snapshots and samples, state hash. Long values (hashes) are shortened; the
    /// JSON form keeps them whole.
    pub fn detail_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.settings.iter().map(KeyChange::line).collect();
        let items = |what: &str, list: &[ItemChange], lines: &mut Vec<String>| {
            for item in list {
                let head = format!("{what} {}: {}", item.change, item.id);
                match item.fields.as_slice() {
                    [] => lines.push(head),
                    [field] if head.len() + field.line().len() + 2 <= SHORT_LINE => {
                        lines.push(format!("{head}: {}", field.line()));
                    }
                    // One field a line: a changed episode moves several amounts of its evidence,
                    // and two exact amounts beside a long identity overflow one line.
                    fields => {
                        lines.push(head);
                        lines.extend(fields.iter().map(|f| format!("  {}", f.line())));
                    }
                }
            }
        };
        items("liquidation", &self.liquidations, &mut lines);
        lines.extend(self.totals.iter().map(KeyChange::line));
        items("unsafe episode", &self.unsafe_episodes, &mut lines);
        items("health", &self.health_distribution, &mut lines);
        items("sample", &self.health_over_time, &mut lines);
        lines.extend(self.state_hash.iter().map(KeyChange::line));
        lines
    }
}

/// The longest detail line (characters) that keeps an item and its one changed field together;
/// `cascade check` indents details by two, so its lines stay within 120.
const SHORT_LINE: usize = 116;

impl KeyChange {
    /// `key old -> new`, values shortened.
    pub fn line(&self) -> String {
        format!(
            "{} {} -> {}",
            self.key,
            short(self.old.as_ref()),
            short(self.new.as_ref())
        )
    }
}

/// A value for a short line: strings unquoted, absent as `(absent)`, hashes (long hex) cut in
/// the middle, an object or list (one side only: where both sides have one, the change is shown
/// leaf by leaf) by its size; amounts stay whole, a cut would hide the digits that changed.
fn short(value: Option<&Value>) -> String {
    const LONG: usize = 24;
    let text = match value {
        None => return "(absent)".to_owned(),
        Some(Value::Object(map)) => return format!("{{{} keys}}", map.len()),
        Some(Value::Array(list)) => return format!("[{} items]", list.len()),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    let digits = text.strip_prefix("0x").unwrap_or(&text);
    if digits.len() <= LONG || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return text;
    }
    format!("{}…{}", &text[..10], &text[text.len() - 6..])
}

/// Compares two run files given as JSON values.
///
/// When `expected` lists [`GOLDEN_FIELDS_KEY`], `actual` is first [`project`]ed to the same
/// fields: a compact golden only checks what it holds.
pub fn diff_runs(expected: &Value, actual: &Value, options: &DiffOptions) -> RunDiff {
    let projected;
    let actual = match golden_fields(expected) {
        Some(fields) => {
            projected = project(actual, &fields);
            &projected
        }
        None => actual,
    };
    let tolerance = options.tolerance_ppm;
    let mut diff = RunDiff::default();
    for key in ["schema_version", "log", "window", "scenario", "config"] {
        flat_changes(key, expected.get(key), actual.get(key), &mut diff.settings);
    }
    diff.summary.settings_changed = diff.settings.len();

    let (old, new) = (list(expected, "liquidations"), list(actual, "liquidations"));
    let ids = |items: &[Value]| identities(items.iter().map(liquidation_identity));
    let within;
    (diff.liquidations, within) = diff_items(
        (&old, ids(&old)),
        (&new, ids(&new)),
        UNCOMPARED_FIELDS,
        tolerance,
    );
    diff.summary.within_tolerance += within;
    diff.summary.liquidations = Counts::of(&diff.liquidations);
    diff.summary.liquidations_matched = old.len() - diff.summary.liquidations.vanished;
    diff.summary.verdicts_changed = diff
        .liquidations
        .iter()
        .filter(|change| change.fields.iter().any(|field| field.key == "verdict"))
        .count();

    flat_changes(
        "totals",
        expected.get("totals"),
        actual.get("totals"),
        &mut diff.totals,
    );
    // The listed snapshot differences are counts and amounts of the totals' kind.
    flat_changes(
        "snapshot_differences",
        expected.get("snapshot_differences"),
        actual.get("snapshot_differences"),
        &mut diff.totals,
    );
    diff.summary.totals_moved = diff.totals.len();

    let (old, new) = (
        list(expected, "unsafe_unliquidated"),
        list(actual, "unsafe_unliquidated"),
    );
    let (old_ids, new_ids) = episode_ids(&old, &new);
    let within;
    (diff.unsafe_episodes, within) = diff_items((&old, old_ids), (&new, new_ids), &[], tolerance);
    diff.summary.within_tolerance += within;
    diff.summary.unsafe_episodes = Counts::of(&diff.unsafe_episodes);

    let (old, new) = (list(expected, "timeline"), list(actual, "timeline"));
    let ids = |items: &[Value]| {
        identities(
            items
                .iter()
                .map(|item| join_fields(item, &["time", "protocol", "market"])),
        )
    };
    let (timeline, within) = diff_items((&old, ids(&old)), (&new, ids(&new)), &["seq"], tolerance);
    diff.summary.within_tolerance += within;
    diff.summary.timeline_points = Counts::of(&timeline);

    let (old, new) = (
        list(expected, "health_distribution"),
        list(actual, "health_distribution"),
    );
    let ids = |items: &[Value]| {
        identities(
            items
                .iter()
                .map(|item| join_fields(item, &["moment", "protocol", "market"])),
        )
    };
    let within;
    (diff.health_distribution, within) = diff_items(
        (&old, ids(&old)),
        (&new, ids(&new)),
        &["seq", "time"],
        tolerance,
    );
    diff.summary.within_tolerance += within;
    diff.summary.health_snapshots = Counts::of(&diff.health_distribution);

    for key in SAMPLE_LISTS {
        let (old, new) = (list(expected, key), list(actual, key));
        let ids = |items: &[Value]| {
            identities(
                items
                    .iter()
                    .map(|item| format!("{key} {}", join_fields(item, identity_fields(key)))),
            )
        };
        let (changes, within) = diff_items(
            (&old, ids(&old)),
            (&new, ids(&new)),
            &["seq", "time"],
            tolerance,
        );
        diff.summary.within_tolerance += within;
        diff.health_over_time.extend(changes);
    }
    diff.summary.health_samples = Counts::of(&diff.health_over_time);

    if expected.get("state_hash") != actual.get("state_hash") {
        diff.summary.state_hash_changed = true;
        diff.state_hash = Some(KeyChange {
            key: "state_hash".to_owned(),
            old: expected.get("state_hash").cloned(),
            new: actual.get("state_hash").cloned(),
        });
    }
    diff
}

/// The lists of samples taken over the window and at its start and end (schema version 4).
const SAMPLE_LISTS: [&str; 4] = [
    "health_over_time",
    "leverage_over_time",
    "liquidation_ladder",
    "overlap",
];

fn list(run: &Value, key: &str) -> Vec<Value> {
    run.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Identities for unsafe episodes: an episode starts at the first check that found the account
/// unsafe, and a log with more events has more checks, so its start moves. An episode of this
/// replay that overlaps one of the golden's for the same account takes that one's identity
/// (account and golden start); the others are named by their own start.
fn episode_ids(old: &[Value], new: &[Value]) -> (Vec<String>, Vec<String>) {
    let text = |item: &Value, field: &str| {
        item.get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let own = |item: &Value| join_fields(item, &["protocol", "market", "account", "from"]);
    let account = |item: &Value| join_fields(item, &["protocol", "market", "account"]);
    let old_ids = identities(old.iter().map(own));
    let mut taken = vec![false; old.len()];
    let new_ids: Vec<String> = new
        .iter()
        .map(|episode| {
            // RFC 3339 UTC times of one format compare as text.
            let (from, to) = (text(episode, "from"), text(episode, "to"));
            let matched = old.iter().enumerate().position(|(index, other)| {
                !taken[index]
                    && account(other) == account(episode)
                    && text(other, "from") <= to
                    && from <= text(other, "to")
            });
            match matched {
                Some(index) => {
                    taken[index] = true;
                    old_ids[index].clone()
                }
                None => own(episode),
            }
        })
        .collect();
    (old_ids, identities(new_ids))
}

/// The fields a compact golden holds, if it is one.
pub fn golden_fields(run: &Value) -> Option<Vec<String>> {
    let list = run.get(GOLDEN_FIELDS_KEY)?.as_array()?;
    Some(
        list.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    )
}

/// Keys a list keeps in every item of a projection, so that items still match (not `seq`: a
/// compact golden must not change when the log gains events).
fn identity_fields(list: &str) -> &'static [&'static str] {
    match list {
        "liquidations" => &[
            "time",
            "origin",
            "protocol",
            "market",
            "account",
            "tx_hash",
            "log_index",
        ],
        "unsafe_unliquidated" => &["protocol", "market", "account", "from"],
        "timeline" => &["time", "protocol", "market"],
        "health_distribution" => &["moment", "protocol", "market"],
        "health_over_time" => &["period", "protocol", "market"],
        "leverage_over_time" => &["period", "scope"],
        "liquidation_ladder" => &["moment", "group", "fall"],
        "overlap" => &["moment"],
        _ => &[],
    }
}

/// `run` restricted to `fields` (top-level keys, or `key.sub` for a key of an object or of every
/// item of a list; list items keep the keys that identify them), with `schema_version` and the
/// field list under [`GOLDEN_FIELDS_KEY`]. Unknown fields select nothing.
pub fn project(run: &Value, fields: &[String]) -> Value {
    let mut out = Map::new();
    if let Some(version) = run.get("schema_version") {
        out.insert("schema_version".to_owned(), version.clone());
    }
    out.insert(
        GOLDEN_FIELDS_KEY.to_owned(),
        Value::Array(fields.iter().cloned().map(Value::String).collect()),
    );
    let mut nested: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for field in fields {
        match field.split_once('.') {
            None => {
                if let Some(value) = run.get(field.as_str()) {
                    out.insert(field.clone(), value.clone());
                }
            }
            Some((top, sub)) => nested.entry(top).or_default().push(sub),
        }
    }
    for (top, subs) in nested {
        if out.contains_key(top) {
            continue;
        }
        let keep = |object: &Map<String, Value>| -> Value {
            let mut kept = Map::new();
            for (key, value) in object {
                if identity_fields(top).contains(&key.as_str()) || subs.contains(&key.as_str()) {
                    kept.insert(key.clone(), value.clone());
                }
            }
            Value::Object(kept)
        };
        match run.get(top) {
            Some(Value::Object(object)) => {
                out.insert(top.to_owned(), keep(object));
            }
            Some(Value::Array(items)) => {
                let items = items
                    .iter()
                    .map(|item| item.as_object().map_or_else(|| item.clone(), keep))
                    .collect();
                out.insert(top.to_owned(), Value::Array(items));
            }
            _ => {}
        }
    }
    Value::Object(out)
}

fn join_fields(item: &Value, fields: &[&str]) -> String {
    fields
        .iter()
        .filter_map(|field| match item.get(*field) {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Items of two lists matched by their identities (one per item, unique within the list),
/// ignoring the `ignored` fields: appeared, vanished, and changed with each field that differs;
/// amount fields (decimal text) that moved by at most `tolerance_ppm` do not count. Also returns
/// how many matched items differed only within the tolerance.
fn diff_items(
    (old, old_ids): (&[Value], Vec<String>),
    (new, new_ids): (&[Value], Vec<String>),
    ignored: &[&str],
    tolerance_ppm: u64,
) -> (Vec<ItemChange>, usize) {
    let old: BTreeMap<String, &Value> = old_ids.into_iter().zip(old).collect();
    let new: BTreeMap<String, &Value> = new_ids.into_iter().zip(new).collect();
    let mut changes = Vec::new();
    let mut within_tolerance = 0;
    for (id, item) in &old {
        let Some(other) = new.get(id) else {
            changes.push(ItemChange {
                change: "vanished",
                id: id.clone(),
                fields: Vec::new(),
            });
            continue;
        };
        let all = field_changes(item, other, ignored);
        let moved = all.len();
        let fields: Vec<KeyChange> = all
            .into_iter()
            .filter(|field| !within(field.old.as_ref(), field.new.as_ref(), tolerance_ppm))
            .collect();
        if !fields.is_empty() {
            changes.push(ItemChange {
                change: "changed",
                id: id.clone(),
                fields,
            });
        } else if moved > 0 {
            within_tolerance += 1;
        }
    }
    changes.extend(
        new.keys()
            .filter(|id| !old.contains_key(*id))
            .map(|id| ItemChange {
                change: "appeared",
                id: id.clone(),
                fields: Vec::new(),
            }),
    );
    (changes, within_tolerance)
}

/// The leaves of two objects that differ, as key paths (`oracle.break_even_price`,
/// `evidence.debt`), the top-level `ignored` fields left out: a nested object that changed shows
/// the values that moved, each of which the tolerance then weighs on its own.
fn field_changes(old: &Value, new: &Value, ignored: &[&str]) -> Vec<KeyChange> {
    let empty = Map::new();
    let a = old.as_object().unwrap_or(&empty);
    let b = new.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut changes = Vec::new();
    for key in keys
        .into_iter()
        .filter(|key| !ignored.contains(&key.as_str()))
    {
        flat_changes(key, a.get(key), b.get(key), &mut changes);
    }
    changes
}

/// Liquidation fields never compared: `seq` is a log position (it moves when the log gains
/// events), `note` explains the verdict with the numbers that are compared themselves.
const UNCOMPARED_FIELDS: &[&str] = &["seq", "note"];

/// Whether two amounts (decimal text) differ by at most `ppm` millionths of the old one; false
/// for anything that is not two amounts.
fn within(old: Option<&Value>, new: Option<&Value>, ppm: u64) -> bool {
    let parse = |value: Option<&Value>| value.and_then(Value::as_str).map(Fixed::parse_exact);
    let (Some(Ok(old)), Some(Ok(new))) = (parse(old), parse(new)) else {
        return false;
    };
    let decimals = old.decimals.max(new.decimals);
    let (Some(a), Some(b)) = (old.rescale(decimals), new.rescale(decimals)) else {
        return false;
    };
    let change = if a > b { a - b } else { b - a };
    let million = cascade_events::U256::from(1_000_000u64);
    match (
        change.checked_mul(million),
        a.checked_mul(cascade_events::U256::from(ppm)),
    ) {
        (Some(scaled), Some(allowed)) => scaled <= allowed,
        _ => false,
    }
}

/// Every leaf under `key` that differs, as paths (`scenario.overrides[0].value`): objects by
/// key, lists by position.
fn flat_changes(key: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<KeyChange>) {
    let empty = Map::new();
    match (old, new) {
        (Some(Value::Object(_)) | None, Some(Value::Object(_)) | None) if old != new => {
            let a = old.and_then(Value::as_object).unwrap_or(&empty);
            let b = new.and_then(Value::as_object).unwrap_or(&empty);
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for child in keys {
                flat_changes(&format!("{key}.{child}"), a.get(child), b.get(child), out);
            }
        }
        (Some(Value::Array(_)) | None, Some(Value::Array(_)) | None) if old != new => {
            let a = old.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            let b = new.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            for index in 0..a.len().max(b.len()) {
                flat_changes(&format!("{key}[{index}]"), a.get(index), b.get(index), out);
            }
        }
        (a, b) if a != b => out.push(KeyChange {
            key: key.to_owned(),
            old: a.cloned(),
            new: b.cloned(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn liquidation(seq: u64, time: &str, account: &str, verdict: &str, debt: &str) -> Value {
        json!({"seq": seq, "time": time, "origin": "recorded", "protocol": "maker",
               "market": "ETH-B", "account": account, "verdict": verdict, "debt_repaid": debt,
               "note": format!("at seq {seq}")})
    }

    #[test]
    fn liquidations_match_by_identity_not_by_seq() {
        let expected = json!({
            "schema_version": 2,
            "log": {"content_hash": "aa", "last_seq": 10},
            "liquidations": [
                liquidation(5, "2022-06-13T10:00:00Z", "#1", "explained", "100"),
                liquidation(6, "2022-06-13T10:00:00Z", "#1", "explained", "100"),
                liquidation(9, "2022-06-13T11:00:00Z", "#2", "explained", "50"),
            ],
            "totals": {"events": 11, "verdicts": {"explained": 3, "no-price": 0}},
            "state_hash": "aa"
        });
        // One more price file: every seq moved; the second bite of #1 changed verdict, #2
        // vanished, #3 appeared.
        let actual = json!({
            "schema_version": 2,
            "log": {"content_hash": "bb", "last_seq": 20},
            "liquidations": [
                liquidation(8, "2022-06-13T10:00:00Z", "#1", "explained", "100"),
                liquidation(9, "2022-06-13T10:00:00Z", "#1", "no-price", "100"),
                liquidation(15, "2022-06-13T12:00:00Z", "#3", "explained", "70"),
            ],
            "totals": {"events": 21, "verdicts": {"explained": 2, "no-price": 1}},
            "state_hash": "aa"
        });
        let diff = diff_runs(&expected, &actual, &DiffOptions::default());
        assert_eq!(diff.summary.liquidations_matched, 2);
        assert_eq!(
            diff.summary.liquidations,
            Counts {
                appeared: 1,
                vanished: 1,
                changed: 1
            }
        );
        assert_eq!(diff.summary.verdicts_changed, 1);
        assert_eq!(diff.summary.totals_moved, 3);
        assert_eq!(diff.summary.settings_changed, 2);
        let lines = diff.detail_lines().join("\n");
        assert!(
            lines.contains(
                "liquidation changed: 2022-06-13T10:00:00Z recorded maker ETH-B #1 (2): verdict explained -> no-price"
            ),
            "{lines}"
        );
        assert!(!lines.contains("note"), "{lines}");
        assert!(
            lines.contains("liquidation vanished: 2022-06-13T11:00:00Z recorded maker ETH-B #2"),
            "{lines}"
        );
        assert!(lines.contains("log.content_hash aa -> bb"), "{lines}");
        assert!(lines.contains("totals.verdicts.no-price 0 -> 1"), "{lines}");
        assert_eq!(
            diff.summary_lines(),
            [
                "liquidations: 2 matched, 1 appeared, 1 vanished, 1 changed (1 verdict)",
                "totals moved: 3",
                "settings changed: 2 (log)",
            ]
        );
        assert!(diff_runs(&expected, &expected, &DiffOptions::default()).is_empty());
    }

    #[test]
    fn transaction_hash_and_log_index_identify_where_present() {
        let mut with_tx = liquidation(5, "2022-06-13T10:00:00Z", "#1", "explained", "1");
        with_tx["tx_hash"] = json!("0xab");
        with_tx["log_index"] = json!(7);
        assert_eq!(
            liquidation_identity(&with_tx),
            "2022-06-13T10:00:00Z recorded maker ETH-B #1 tx 0xab:7"
        );
        assert_eq!(
            identities(["a".to_owned(), "b".to_owned(), "a".to_owned()]),
            ["a", "b", "a (2)"]
        );
    }

    #[test]
    fn amounts_within_the_tolerance_are_counted_not_listed() {
        let old = json!({"liquidations": [liquidation(1, "t", "#1", "explained", "1000000")]});
        let new = json!({"liquidations": [liquidation(1, "t", "#1", "explained", "1000001")]});
        let exact = diff_runs(&old, &new, &DiffOptions::default());
        assert_eq!(exact.summary.liquidations.changed, 1);
        assert_eq!(exact.liquidations[0].fields[0].key, "debt_repaid");
        let tolerant = diff_runs(&old, &new, &DiffOptions { tolerance_ppm: 1 });
        assert!(tolerant.is_empty());
        assert_eq!(tolerant.summary.within_tolerance, 1);
        let far = json!({"liquidations": [liquidation(1, "t", "#1", "explained", "1000002")]});
        let beyond = diff_runs(&old, &far, &DiffOptions { tolerance_ppm: 1 });
        assert_eq!(beyond.summary.liquidations.changed, 1);
    }

    #[test]
    fn hourly_health_samples_are_matched_by_period_and_market() {
        let sample = |seq: u64, accounts: u64| {
            json!({"period": "2021-05-19T13:00:00Z", "seq": seq, "protocol": "maker",
                   "market": "ETH-B", "buckets": [{"range": "<1", "accounts": accounts}]})
        };
        let old = json!({"health_over_time": [sample(10, 3)]});
        // A longer log moves the sample's event: not a change.
        let moved = json!({"health_over_time": [sample(11, 3)]});
        assert!(diff_runs(&old, &moved, &DiffOptions::default()).is_empty());
        let changed = json!({"health_over_time": [sample(10, 4)]});
        let diff = diff_runs(&old, &changed, &DiffOptions::default());
        assert_eq!(diff.summary.health_samples.changed, 1);
        assert_eq!(
            diff.health_over_time[0].id,
            "health_over_time 2021-05-19T13:00:00Z maker ETH-B"
        );
        assert!(
            diff.summary_lines()
                .iter()
                .any(|l| l.starts_with("health and leverage samples: "))
        );
    }

    #[test]
    fn a_compact_golden_checks_only_its_fields() {
        let run = json!({
            "schema_version": 2,
            "log": {"content_hash": "aa"},
            "totals": {"events": 11, "verdicts": {"explained": 1}},
            "liquidations": [liquidation(5, "t", "#1", "explained", "100")],
            "timeline": [{"seq": 1, "time": "t", "protocol": "maker", "market": "ETH-B"}],
            "state_hash": "aa"
        });
        let fields = [
            "liquidations.verdict".to_owned(),
            "totals.verdicts".to_owned(),
        ];
        let golden = project(&run, &fields);
        assert_eq!(
            golden,
            json!({
                "schema_version": 2,
                "golden_fields": ["liquidations.verdict", "totals.verdicts"],
                "totals": {"verdicts": {"explained": 1}},
                "liquidations": [{"time": "t", "origin": "recorded",
                                  "protocol": "maker", "market": "ETH-B", "account": "#1",
                                  "verdict": "explained"}]
            })
        );
        let mut changed = run.clone();
        changed["log"]["content_hash"] = json!("bb");
        changed["state_hash"] = json!("bb");
        changed["totals"]["events"] = json!(20);
        changed["liquidations"][0]["debt_repaid"] = json!("99");
        assert!(diff_runs(&golden, &changed, &DiffOptions::default()).is_empty());
        changed["liquidations"][0]["verdict"] = json!("no-price");
        let diff = diff_runs(&golden, &changed, &DiffOptions::default());
        assert_eq!(diff.summary.verdicts_changed, 1);
    }

    #[test]
    fn unsafe_episodes_whose_start_moved_still_match() {
        let episode = |account: &str, from: &str, to: &str| {
            json!({"protocol": "maker", "market": "ETH-B", "account": account,
                   "from": from, "to": to})
        };
        let old = json!({"unsafe_unliquidated": [
            episode("#1", "2021-01-01T10:00:00Z", "2021-01-01T12:00:00Z"),
            episode("#1", "2021-02-01T10:00:00Z", "2021-02-01T12:00:00Z"),
        ]});
        let new = json!({"unsafe_unliquidated": [
            episode("#1", "2021-01-01T09:30:00Z", "2021-01-01T12:00:00Z"),
            episode("#1", "2021-03-01T10:00:00Z", "2021-03-01T12:00:00Z"),
        ]});
        let diff = diff_runs(&old, &new, &DiffOptions::default());
        assert_eq!(
            diff.summary.unsafe_episodes,
            Counts {
                appeared: 1,
                vanished: 1,
                changed: 1
            }
        );
        assert_eq!(
            diff.detail_lines()[0],
            "unsafe episode changed: maker ETH-B #1 2021-01-01T10:00:00Z: from 2021-01-01T10:00:00Z -> 2021-01-01T09:30:00Z"
        );
    }

    #[test]
    fn nested_changes_are_key_paths_weighed_by_the_tolerance_at_every_depth() {
        let run = |break_even: &str, debt: &str, spot: &str| {
            json!({
                "liquidations": [{
                    "seq": 7, "time": "2022-06-13T10:00:00Z", "origin": "recorded", "protocol": "maker",
                    "market": "ETH-B", "account": "#1", "verdict": "explained",
                    "oracle": {"break_even_price": break_even, "spot": spot, "kind": "osm"}
                }],
                "unsafe_unliquidated": [{
                    "protocol": "maker", "market": "ETH-B", "account": "#2",
                    "from": "2022-06-13T09:00:00Z", "to": "2022-06-13T12:00:00Z",
                    "evidence": {"debt": debt, "collateral": {"WETH": "100"}, "note": "x".repeat(900)}
                }]
            })
        };
        let golden = run("1537.835907319888011241329239", "814789.11", "1182.95");
        let moved = run("1537.835907319888011241329240", "814789.02", "1182.95");
        let exact = diff_runs(&golden, &moved, &DiffOptions::default());
        assert_eq!(exact.summary.liquidations.changed, 1);
        assert_eq!(exact.summary.unsafe_episodes.changed, 1);
        assert_eq!(
            exact.detail_lines(),
            [
                // Two exact ray amounts beside the identity overflow a line: the field goes under.
                "liquidation changed: 2022-06-13T10:00:00Z recorded maker ETH-B #1",
                "  oracle.break_even_price 1537.835907319888011241329239 -> \
                 1537.835907319888011241329240",
                "unsafe episode changed: maker ETH-B #2 2022-06-13T09:00:00Z: evidence.debt \
                 814789.11 -> 814789.02",
            ]
        );
        // 1 ppm covers both: the oracle's last digit, and 0.09 DAI of 814,789.11 (0.11 ppm).
        let tolerant = diff_runs(&golden, &moved, &DiffOptions { tolerance_ppm: 1 });
        assert!(tolerant.is_empty(), "{:?}", tolerant.detail_lines());
        assert_eq!(tolerant.summary.within_tolerance, 2);
        // Several leaves of one item: a line each, under the item.
        let mut both = moved.clone();
        both["unsafe_unliquidated"][0]["evidence"]["collateral"]["WETH"] = json!("90");
        both["unsafe_unliquidated"][0]["evidence"]["note"] = json!("y".repeat(900));
        let lines = diff_runs(&golden, &both, &DiffOptions { tolerance_ppm: 1 }).detail_lines();
        assert_eq!(
            lines[0],
            "unsafe episode changed: maker ETH-B #2 2022-06-13T09:00:00Z"
        );
        assert_eq!(lines[1], "  evidence.collateral.WETH 100 -> 90");
        assert!(lines[2].starts_with("  evidence.note xxxx"), "{lines:?}");
    }

    #[test]
    fn a_scenario_change_is_shown_as_the_keys_that_differ() {
        let scenario = |value: &str, extra: bool| {
            let mut overrides = vec![json!({"param": "mat", "value": value})];
            if extra {
                overrides.push(json!({"param": "chop", "value": "0.1"}));
            }
            json!({"scenario": {"label": "x", "overrides": overrides}})
        };
        let diff = diff_runs(
            &scenario("1.5", false),
            &scenario("1.6", true),
            &DiffOptions::default(),
        );
        assert_eq!(
            diff.detail_lines(),
            [
                "scenario.overrides[0].value 1.5 -> 1.6",
                "scenario.overrides[1].param (absent) -> chop",
                "scenario.overrides[1].value (absent) -> 0.1",
            ]
        );
        let hash = "87264677fb17a49a7e949fe55a5f49c81d47d1b2b28da63d148d5b70c760627d";
        assert_eq!(short(Some(&json!(hash))), "87264677fb…60627d");
        let amount = "8101708.786512345678797296";
        assert_eq!(short(Some(&json!(amount))), amount);
    }
}
