//! Outcome labels of scored leads, for backtests and calibration: which
//! contacts have an outcome and whether each converted, from an outcome
//! column of a file or from outcome events after the as-of time.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::{LearnError, Result};
use crate::table::{DEFAULT_MISSING, Table};

/// The contacts with an outcome and their labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Positions (in the list of contacts given) of the contacts kept.
    pub keep: Vec<usize>,
    /// 1 (converted) or 0, one per kept contact.
    pub labels: Vec<u8>,
    /// Contacts left out: no outcome, or converted before the as-of time.
    pub left_out: usize,
}

impl Outcomes {
    fn checked(self) -> Result<Outcomes> {
        if self.labels.is_empty() {
            return Err(LearnError::NoOutcomes);
        }
        Ok(self)
    }
}

/// Outcomes from the `label` column of a CSV file with an `id` column
/// (`positive` names the value that means converted; by default 1, yes,
/// true). Contacts without a row are left out.
pub fn from_column(
    path: &Path,
    label: &str,
    positive: Option<&str>,
    contacts: &[&str],
) -> Result<Outcomes> {
    let missing: Vec<String> = DEFAULT_MISSING.iter().map(|s| s.to_string()).collect();
    let mut table = Table::read_csv(path, &missing)?;
    let outcome = table.take_label(label, positive)?;
    let ids = table.column("id")?;
    let by_id: HashMap<&str, u8> = outcome
        .iter()
        .enumerate()
        .filter_map(|(r, &y)| Some((ids.get(r)?, y)))
        .collect();
    let mut out = Outcomes::default();
    for (i, id) in contacts.iter().enumerate() {
        match by_id.get(id) {
            Some(&y) => {
                out.keep.push(i);
                out.labels.push(y);
            }
            None => out.left_out += 1,
        }
    }
    out.checked()
}

/// Outcomes from outcome events, `(contact id, time in ns)`: a contact
/// converted if it has one after `as_of` (ns) and within `horizon_days`
/// (days); a contact with one at or before `as_of` had converted already
/// and is left out.
pub fn from_events(
    contacts: &[&str],
    events: impl IntoIterator<Item = (String, i64)>,
    as_of: i64,
    horizon_days: f64,
) -> Result<Outcomes> {
    if horizon_days.is_nan() || horizon_days <= 0.0 {
        return Err(LearnError::Option {
            option: "--horizon-days".into(),
            message: "must be greater than 0".into(),
        });
    }
    let end = as_of.saturating_add((horizon_days * 86_400e9) as i64);
    let mut before = HashSet::new();
    let mut within = HashSet::new();
    for (contact, t) in events {
        if t <= as_of {
            before.insert(contact);
        } else if t <= end {
            within.insert(contact);
        }
    }
    let mut out = Outcomes::default();
    for (i, &id) in contacts.iter().enumerate() {
        if before.contains(id) {
            out.left_out += 1;
        } else {
            out.keep.push(i);
            out.labels.push(u8::from(within.contains(id)));
        }
    }
    out.checked()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000_000;

    #[test]
    fn events_after_the_as_of_time_and_within_the_horizon_convert() {
        let contacts = ["a", "b", "c", "d"];
        let events = vec![
            ("a".to_string(), 5 * DAY),  // within
            ("b".to_string(), 40 * DAY), // past the horizon
            ("c".to_string(), DAY),      // before: left out
            ("x".to_string(), 5 * DAY),  // not a contact
        ];
        let o = from_events(&contacts, events, 2 * DAY, 30.0).unwrap();
        assert_eq!(o.keep, vec![0, 1, 3]);
        assert_eq!(o.labels, vec![1, 0, 0]);
        assert_eq!(o.left_out, 1);
        assert!(from_events(&contacts, Vec::new(), 0, 0.0).is_err());
        let all_before = vec![("a".to_string(), 0)];
        assert!(matches!(
            from_events(&["a"], all_before, DAY, 30.0),
            Err(LearnError::NoOutcomes)
        ));
    }

    #[test]
    fn a_column_labels_the_contacts_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outcomes.csv");
        std::fs::write(&path, "id,won\na,yes\nc,no\nz,yes\n").unwrap();
        let o = from_column(&path, "won", None, &["a", "b", "c"]).unwrap();
        assert_eq!((o.keep, o.labels, o.left_out), (vec![0, 2], vec![1, 0], 1));
    }
}
