//! Where a key of a mapping file is: its line and column, from the TOML parser's spans, so an
//! error about a field points at that field and not at the `[[event]]` header above it.
//!
//! Must never: name a place other than the key the error is about (when the key cannot be found,
//! no place is named).

use toml::de::{DeTable, DeValue};

/// One step of a path into the mapping: a key of a table, or an element of an array (the n-th
/// `[[event]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// A key.
    Key(String),
    /// An element, from 0.
    Index(usize),
}

/// `line L, column C` (both 1-based) of the last key of `path` in `text`, or `None` when the
/// text does not parse or has no such key.
pub(super) fn locate(text: &str, path: &[Step]) -> Option<String> {
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut value: Option<&DeValue<'_>> = None;
    let mut at = None;
    for step in path {
        match step {
            Step::Key(name) => {
                if let Some(DeValue::Table(inner)) = value {
                    table = inner;
                } else if value.is_some() {
                    return None;
                }
                let (key, found) = table.iter().find(|(key, _)| key.get_ref() == name)?;
                at = Some(key.span().start);
                value = Some(found.get_ref());
            }
            Step::Index(index) => {
                let Some(DeValue::Array(items)) = value else {
                    return None;
                };
                let item = items.get(*index)?;
                at = at.or(Some(item.span().start));
                value = Some(item.get_ref());
            }
        }
    }
    place(text, at?)
}

/// `line L, column C` of the first key named `name` anywhere in `text` (tables, arrays of
/// tables, inline tables), in document order: where serde's "unknown field" is, which the
/// parser cannot place inside an internally tagged `[[event]]`.
pub(super) fn locate_key_named(text: &str, name: &str) -> Option<String> {
    fn search(table: &DeTable<'_>, name: &str) -> Option<usize> {
        let mut found: Option<usize> = None;
        let mut consider = |at: Option<usize>| {
            if let Some(at) = at {
                found = Some(found.map_or(at, |f| f.min(at)));
            }
        };
        for (key, value) in table.iter() {
            if key.get_ref() == name {
                consider(Some(key.span().start));
            }
            consider(search_value(value.get_ref(), name));
        }
        found
    }
    fn search_value(value: &DeValue<'_>, name: &str) -> Option<usize> {
        match value {
            DeValue::Table(table) => search(table, name),
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| search_value(item.get_ref(), name))
                .min(),
            _ => None,
        }
    }
    let root = DeTable::parse(text).ok()?;
    place(text, search(root.get_ref(), name)?)
}

fn place(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some(format!("line {line}, column {column}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Step {
        Step::Key(name.into())
    }

    #[test]
    fn finds_the_key_of_the_nth_table_of_an_array() {
        let text = "[time]\ncolumn = \"t\"\n\n[[event]]\nkind = \"price\"\n\n[[event]]\nkind = \"deposit\"\n  amount = { column = \"a\" }\n";
        assert_eq!(
            locate(text, &[key("event"), Step::Index(1), key("amount")]).as_deref(),
            Some("line 9, column 3")
        );
        assert_eq!(
            locate(text, &[key("time"), key("column")]).as_deref(),
            Some("line 2, column 1")
        );
        assert_eq!(
            locate(text, &[key("event"), Step::Index(0), key("amount")]),
            None
        );
        assert_eq!(locate("not toml [", &[key("time")]), None);
    }
}
