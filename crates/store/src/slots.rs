//! The numbers a contact's stored rule matches are kept under.
//!
//! A match names its rule. Scoring numbers rules by their place in the
//! model file, but a stored match names its rule by a *slot*: a number
//! that a rule keeps from one model version to the next (the rule with the
//! same `id` and kind), whatever its place. Adding a rule first, or
//! removing one, then changes no stored match, so `model set` leaves the
//! contacts the change does not touch alone instead of rewriting every
//! contact's matches with new numbers.
//!
//! Each model version stores its slots (`models.slots`, JSON: `{"rules":
//! [slot of each rule, in model order], "next": first slot never given}`;
//! NULL for versions made before schema 7, where slot = place). A new rule
//! gets a slot no earlier version gave, so an old slot never names a new
//! rule.
//! Matches are packed as 20 bytes each: slot and requalify flag (u32:
//! `slot << 1 | requalify`), time (i64 ns), event key (u64), little-endian.

use leadscore_core::{Hit, Target};

use crate::error::{Result, StoreError};

/// The slot of each rule of one model version, and the way back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slots {
    /// Rule place -> its slot.
    of_rule: Vec<u32>,
    /// Slot -> rule place (`u32::MAX`: no rule of this version).
    rule_of: Vec<u32>,
    /// The first slot no version up to this one gave.
    next: u32,
}

/// The stored form of [`Slots`].
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSlots {
    rules: Vec<u32>,
    next: u32,
}

const NONE: u32 = u32::MAX;

/// Slots above this are refused as corrupt (a model has far fewer rules;
/// a slot is at most the number of rules ever added).
const MAX_SLOT: u32 = 1 << 24;

impl Slots {
    /// Slot = place, for `rules` rules (a first model version).
    pub fn identity(rules: usize) -> Slots {
        let of_rule: Vec<u32> = (0..rules as u32).collect();
        Slots {
            rule_of: of_rule.clone(),
            of_rule,
            next: rules as u32,
        }
    }

    fn from_places(of_rule: Vec<u32>, next: u32) -> Result<Slots> {
        let top = of_rule.iter().copied().max().map_or(0, |m| m as usize + 1);
        if next > MAX_SLOT {
            return Err(StoreError::Corrupt(format!(
                "next rule slot {next} is too large"
            )));
        }
        let mut rule_of = vec![NONE; top];
        for (place, &slot) in of_rule.iter().enumerate() {
            if slot >= MAX_SLOT {
                return Err(StoreError::Corrupt(format!(
                    "rule slot {slot} is too large"
                )));
            }
            if rule_of[slot as usize] != NONE {
                return Err(StoreError::Corrupt(format!(
                    "rule slot {slot} is given twice"
                )));
            }
            rule_of[slot as usize] = place as u32;
        }
        let next = next.max(top as u32);
        Ok(Slots {
            of_rule,
            rule_of,
            next,
        })
    }

    /// Reads a model version's stored slots (`None`: slot = place) for a
    /// model of `rules` rules.
    pub fn from_stored(text: Option<&str>, rules: usize) -> Result<Slots> {
        let Some(text) = text else {
            return Ok(Slots::identity(rules));
        };
        let stored: StoredSlots = serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("stored rule slots: {e}")))?;
        if stored.rules.len() != rules {
            return Err(StoreError::Corrupt(format!(
                "{} rule slots stored for a model of {rules} rules",
                stored.rules.len()
            )));
        }
        Slots::from_places(stored.rules, stored.next)
    }

    /// The text stored with a model version.
    pub fn to_stored(&self) -> String {
        let stored = StoredSlots {
            rules: self.of_rule.clone(),
            next: self.next,
        };
        serde_json::to_string(&stored).unwrap_or_else(|_| "{}".into())
    }

    /// The slots of a new model version: a rule paired with an old one
    /// (`pairs`: old place -> new place) keeps the old rule's slot; every
    /// other rule gets a slot past all of `self`'s, in model order.
    pub fn follow(&self, pairs: &[Option<u32>], rules: usize) -> Result<Slots> {
        let mut of_rule = vec![NONE; rules];
        for (old, new) in pairs.iter().enumerate() {
            if let (Some(new), Some(&slot)) = (new, self.of_rule.get(old))
                && let Some(s) = of_rule.get_mut(*new as usize)
            {
                *s = slot;
            }
        }
        let mut next = self.next;
        for s in of_rule.iter_mut().filter(|s| **s == NONE) {
            *s = next;
            next += 1;
        }
        Slots::from_places(of_rule, next)
    }

    /// Packs hits (numbered by rule place) for storing.
    pub fn pack(&self, hits: &[Hit<u64>]) -> Vec<u8> {
        let mut out = Vec::with_capacity(hits.len() * 20);
        for h in hits {
            let (Target::Rule(i) | Target::Requalify(i)) = h.target;
            let slot = self.of_rule.get(i as usize).copied().unwrap_or(i);
            let t = (slot << 1) | u32::from(matches!(h.target, Target::Requalify(_)));
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&h.at.0.to_le_bytes());
            out.extend_from_slice(&h.key.to_le_bytes());
        }
        out
    }

    /// Reads hits packed by [`Slots::pack`], numbered by rule place. A slot
    /// no rule of this version holds is an error: the stored matches are
    /// not this model's.
    pub fn unpack(&self, blob: &[u8]) -> Result<Vec<Hit<u64>>> {
        if !blob.len().is_multiple_of(20) {
            return Err(StoreError::Corrupt(format!(
                "hits blob of {} bytes",
                blob.len()
            )));
        }
        let mut out = Vec::with_capacity(blob.len() / 20);
        for c in blob.chunks_exact(20) {
            let word = |r: std::ops::Range<usize>| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&c[r]);
                b
            };
            let mut t = [0u8; 4];
            t.copy_from_slice(&c[0..4]);
            let t = u32::from_le_bytes(t);
            let slot = t >> 1;
            let place = match self.rule_of.get(slot as usize) {
                Some(&p) if p != NONE => p,
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "a stored match names rule slot {slot}, which the current model does not have"
                    )));
                }
            };
            out.push(Hit {
                target: if t & 1 == 1 {
                    Target::Requalify(place)
                } else {
                    Target::Rule(place)
                },
                at: leadscore_core::Timestamp(i64::from_le_bytes(word(4..12))),
                key: u64::from_le_bytes(word(12..20)),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadscore_core::Timestamp;

    fn hit(target: Target, at: i64, key: u64) -> Hit<u64> {
        Hit {
            target,
            at: Timestamp(at),
            key,
        }
    }

    #[test]
    fn hits_come_back_as_packed() {
        let hits = vec![
            hit(Target::Rule(0), 5, 9),
            hit(Target::Requalify(2), -3, u64::MAX),
            hit(Target::Rule(1), i64::MAX, 0),
        ];
        for slots in [
            Slots::identity(3),
            Slots::from_stored(Some(r#"{"rules": [7, 0, 3], "next": 8}"#), 3).unwrap(),
        ] {
            assert_eq!(slots.unpack(&slots.pack(&hits)).unwrap(), hits);
        }
        assert!(Slots::identity(3).unpack(&[1, 2, 3]).is_err());
    }

    #[test]
    fn a_rule_added_first_leaves_the_stored_bytes_as_they_were() {
        let old = Slots::identity(2);
        let hits = vec![hit(Target::Rule(0), 1, 1), hit(Target::Requalify(1), 2, 2)];
        let blob = old.pack(&hits);
        // New model: a new rule first, then the two old ones.
        let new = old.follow(&[Some(1), Some(2)], 3).unwrap();
        assert_eq!(new.to_stored(), r#"{"rules":[2,0,1],"next":3}"#);
        let moved = vec![hit(Target::Rule(1), 1, 1), hit(Target::Requalify(2), 2, 2)];
        assert_eq!(new.unpack(&blob).unwrap(), moved);
        assert_eq!(new.pack(&moved), blob);
    }

    #[test]
    fn a_removed_rules_slot_is_never_given_again() {
        let old = Slots::identity(3);
        let blob = old.pack(&[hit(Target::Rule(1), 1, 1)]);
        // Rule 1 removed, a new rule added last.
        let new = old.follow(&[Some(0), None, Some(1)], 3).unwrap();
        assert_eq!(new.to_stored(), r#"{"rules":[0,2,3],"next":4}"#);
        assert!(new.unpack(&blob).is_err(), "slot 1 names no rule now");
        // The last rule removed, then a rule added: slot 3 is not given again.
        let newer = new.follow(&[Some(0), Some(1), None], 2).unwrap();
        let newest = newer.follow(&[Some(0), Some(1)], 3).unwrap();
        assert_eq!(newest.to_stored(), r#"{"rules":[0,2,4],"next":5}"#);
        let back = Slots::from_stored(Some(&newest.to_stored()), 3).unwrap();
        assert_eq!(back, newest);
    }

    #[test]
    fn stored_slots_that_make_no_sense_are_refused() {
        let stored = |rules: &str| format!(r#"{{"rules": {rules}, "next": 0}}"#);
        assert!(Slots::from_stored(Some(&stored("[0, 0]")), 2).is_err());
        assert!(Slots::from_stored(Some(&stored("[0]")), 2).is_err());
        assert!(Slots::from_stored(Some("nope"), 1).is_err());
        assert!(Slots::from_stored(Some(&stored("[99999999]")), 1).is_err());
        assert!(Slots::from_stored(Some(r#"{"rules": [0], "next": 99999999}"#), 1).is_err());
        assert_eq!(Slots::from_stored(None, 2).unwrap(), Slots::identity(2));
    }
}
