//! What a new model version needs redone on the stored contacts.
//!
//! `model set` compares the old and new models rule by rule, pairing rules
//! by their `id`, and works out:
//! - which stored matches still hold ([`Matching`]): a rule whose matching
//!   (`on`, `when` as written, `requalify_on`) is unchanged keeps its
//!   matches, renumbered if it moved; the events of the other rules' types
//!   are matched again, for those rules alone;
//! - which contacts it may leave alone ([`Unchanged`]): when the models
//!   differ only in some rules, a contact that none of those rules touches
//!   scores the same under both at every time, so its stored live state is
//!   already the new model's. A rule that only moved (others added or
//!   removed before it) still counts as the same rule: its stored matches
//!   keep their numbers ([`crate::slots`]), so they need no rewriting.
//!
//! Pure: models in, plans out; `store` applies them.

use std::collections::HashMap;

use leadscore_core::model::{Rule, RuleKind};
use leadscore_core::scoring::attribute_rule_matches;
use leadscore_core::{Hit, Model, Target};

/// How the stored rule matches relate to the new model.
#[derive(Debug)]
pub(crate) enum Matching {
    /// Every event rule matches as before, at the same place (attribute
    /// rules have no stored matches: only their places count): the stored
    /// matches are the new model's.
    Reuse,
    /// Some rules keep their matches (renumbered); the others' events are
    /// matched again.
    Partial(Rematch),
}

/// The part of the matching a model change redoes.
#[derive(Debug)]
pub(crate) struct Rematch {
    /// Old rule index -> new rule index, for the rules whose matches carry
    /// over (same id, same `on`, `when` and `requalify_on`).
    carried: Vec<Option<u32>>,
    /// New rule index -> its events are matched again.
    again: Vec<bool>,
    /// The event types of the rules matched again and of their
    /// requalifications, sorted.
    pub types: Vec<String>,
}

impl Rematch {
    /// The stored matches that still hold, renumbered for the new model.
    pub fn carried<'a>(&'a self, old: &'a [Hit<u64>]) -> impl Iterator<Item = Hit<u64>> + 'a {
        old.iter().filter_map(|h| {
            let to = (*self.carried.get(rule_of(h))?)?;
            Some(for_rule(h, to))
        })
    }

    /// Whether a match (numbered for the new model) belongs to a rule
    /// matched again.
    pub fn matched_again(&self, hit: &Hit<u64>) -> bool {
        self.again.get(rule_of(hit)).copied().unwrap_or(true)
    }
}

/// The same match, for rule `to` (a match of the rule or of its
/// requalification, as it was).
fn for_rule(hit: &Hit<u64>, to: u32) -> Hit<u64> {
    let target = match hit.target {
        Target::Rule(_) => Target::Rule(to),
        Target::Requalify(_) => Target::Requalify(to),
    };
    Hit { target, ..*hit }
}

/// The rule index a match is for.
fn rule_of(hit: &Hit<u64>) -> usize {
    let (Target::Rule(i) | Target::Requalify(i)) = hit.target;
    i as usize
}

fn is_event(rule: &Rule) -> bool {
    matches!(rule.kind, RuleKind::Event { .. })
}

/// Old rule index -> the new rule with the same id and kind (event or
/// attribute), if any.
pub(crate) fn pairs(old: &Model, new: &Model) -> Vec<Option<u32>> {
    let by_id: HashMap<&str, usize> = new
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    old.rules
        .iter()
        .map(|r| {
            by_id
                .get(r.id.as_str())
                .filter(|&&i| is_event(&new.rules[i]) == is_event(r))
                .map(|&i| i as u32)
        })
        .collect()
}

/// Whether two rules match the same events: same kind (`on`), condition
/// as written (by names: the models may number names apart) and
/// requalification.
fn matches_alike(a: &Rule, b: &Rule) -> bool {
    a.kind == b.kind && a.requalify_on == b.requalify_on && a.when_text == b.when_text
}

/// What the stored matches are worth under `new`.
pub(crate) fn matching(old: &Model, new: &Model) -> Matching {
    let carried: Vec<Option<u32>> = pairs(old, new)
        .into_iter()
        .zip(&old.rules)
        .map(|(to, r)| to.filter(|&i| matches_alike(r, &new.rules[i as usize])))
        .collect();
    let mut again = vec![true; new.rules.len()];
    for &i in carried.iter().flatten() {
        again[i as usize] = false;
    }
    let in_place = old.rules.len() == new.rules.len()
        && carried.iter().enumerate().all(|(j, to)| {
            if is_event(&old.rules[j]) {
                *to == Some(j as u32)
            } else {
                !is_event(&new.rules[j])
            }
        });
    if in_place {
        return Matching::Reuse;
    }
    let mut types: Vec<String> = Vec::new();
    for (rule, _) in new.rules.iter().zip(&again).filter(|(_, a)| **a) {
        if let RuleKind::Event { on } = &rule.kind {
            types.push(on.clone());
        }
        types.extend(rule.requalify_on.iter().cloned());
    }
    types.sort_unstable();
    types.dedup();
    Matching::Partial(Rematch {
        carried,
        again,
        types,
    })
}

/// Which contacts two models score alike: see [`unchanged`].
#[derive(Debug)]
pub(crate) struct Unchanged {
    /// Old rule index -> the index of the new rule that scores like it
    /// (same id and kind; points, limit, dimension, disqualification
    /// and, for an attribute rule, condition the same), if any.
    same_old: Vec<Option<u32>>,
    /// New rule index -> it is the same rule as an old one.
    same_new: Vec<bool>,
}

impl Unchanged {
    /// Whether a contact with these stored matches (numbered for the old
    /// model) and attributes (both models read the same ones) scores alike
    /// under both models at every time, provided its matches under the
    /// new model are the stored ones ([`Unchanged::same_matches`], which
    /// the caller checks): no match on a rule that changed or went (a
    /// rule that only moved keeps its stored number, see `crate::slots`),
    /// and no changed attribute rule holding for it under either model.
    pub fn holds(
        &self,
        (old, new): (&Model, &Model),
        hits: &[Hit<u64>],
        values: &[Option<Box<str>>],
    ) -> bool {
        let touched_old =
            |j: usize| self.same_old[j].is_none() && attribute_rule_matches(old, j, values);
        let touched_new = |i: usize| !self.same_new[i] && attribute_rule_matches(new, i, values);
        hits.iter()
            .all(|h| self.same_old.get(rule_of(h)).is_some_and(Option::is_some))
            && !(0..self.same_old.len()).any(touched_old)
            && !(0..self.same_new.len()).any(touched_new)
    }

    /// A match numbered for the old model, numbered for the new one (for
    /// a rule that is the same in both).
    fn renumbered(&self, hit: &Hit<u64>) -> Option<Hit<u64>> {
        let to = (*self.same_old.get(rule_of(hit))?)?;
        Some(for_rule(hit, to))
    }

    /// Whether a contact's stored matches (numbered for the old model)
    /// are its matches under the new model, both sorted (`sort_hits`).
    /// Same rules keep their order ([`unchanged`]), so renumbering keeps
    /// sorted matches sorted: one walk, nothing allocated.
    pub fn same_matches(&self, old_sorted: &[Hit<u64>], new_sorted: &[Hit<u64>]) -> bool {
        old_sorted.len() == new_sorted.len()
            && old_sorted
                .iter()
                .zip(new_sorted)
                .all(|(o, n)| self.renumbered(o).as_ref() == Some(n))
    }
}

/// When `old` and `new` differ only in rules (added, removed, changed),
/// in dimensions' decay and windows, and in names or version numbers,
/// which rules are the same. `None` when more differs: dimensions' other
/// settings, weights, bands, stages, or the attributes read (then every
/// contact is scored again). A rule of a dimension whose half-life or
/// window changed is not the same: a contact it matches is scored again,
/// one it does not is left alone. A rule is the same when its
/// id, kind, points, limit, dimension and disqualification are; an event
/// rule's `on`, condition and requalification only decide its matches,
/// which the caller compares. Same rules must keep their order (sums are
/// added in rule order, and floating-point addition depends on it): when
/// some swapped places, only a rule at the same place as before counts as
/// the same.
pub(crate) fn unchanged(old: &Model, new: &Model) -> Option<Unchanged> {
    // Dimensions with their time settings (decay, window) set aside: a
    // change to those only changes what the dimension's rules add.
    let untimed = |m: &Model| -> String {
        let mut dims = m.dimensions.clone();
        for d in &mut dims {
            d.half_life_days = None;
            d.window_days = None;
        }
        format!("{:?}", (dims, &m.weights, &m.bands, &m.stages))
    };
    if old.vocabulary.attributes != new.vocabulary.attributes || untimed(old) != untimed(new) {
        return None;
    }
    let retimed: Vec<bool> = old
        .dimensions
        .iter()
        .zip(&new.dimensions)
        .map(|(a, b)| a.half_life_days != b.half_life_days || a.window_days != b.window_days)
        .collect();
    let in_retimed = |r: &Rule| {
        r.dimension
            .is_some_and(|d| retimed.get(d).copied().unwrap_or(true))
    };
    // A rule with what only decides an event rule's matches set aside.
    let scored = |r: &Rule| -> String {
        let mut r = r.clone();
        if let RuleKind::Event { on } = &mut r.kind {
            on.clear();
            r.when = None;
            r.when_text = None;
            r.requalify_on = None;
        }
        format!("{r:?}")
    };
    let same = |j: usize, i: u32| {
        matches!((old.rules.get(j), new.rules.get(i as usize)),
            (Some(a), Some(b)) if a.id == b.id && scored(a) == scored(b) && !in_retimed(b))
    };
    let mut same_old: Vec<Option<u32>> = pairs(old, new)
        .into_iter()
        .enumerate()
        .map(|(j, to)| to.filter(|&i| same(j, i)))
        .collect();
    let in_order = same_old
        .iter()
        .flatten()
        .zip(same_old.iter().flatten().skip(1))
        .all(|(a, b)| a < b);
    if !in_order {
        same_old = (0..old.rules.len())
            .map(|j| Some(j as u32).filter(|&i| same(j, i)))
            .collect();
    }
    let mut same_new = vec![false; new.rules.len()];
    for &i in same_old.iter().flatten() {
        same_new[i as usize] = true;
    }
    Some(Unchanged { same_old, same_new })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A match of one event (time 1, key 7) to `target`.
    fn hit(target: Target) -> Hit<u64> {
        Hit {
            target,
            at: leadscore_core::Timestamp(1),
            key: 7,
        }
    }

    const MODEL: &str = r#"
name = "t"
[[dimension]]
id = "fit"
[[dimension]]
id = "engagement"
[[band]]
id = "hot"
min_score = 50
[[band]]
id = "cold"
min_score = 0
[[rule]]
id = "vp"
dimension = "fit"
points = 20
when = { attribute = "title", equals = "vp" }
[[rule]]
id = "click"
dimension = "engagement"
on = "email_click"
points = 5
[[rule]]
id = "pricing"
dimension = "engagement"
on = "page_view"
points = 10
when = { property = "url", equals = "/pricing" }
"#;

    fn model(text: &str) -> Model {
        Model::from_toml(text).unwrap()
    }

    const LIKE: &str =
        "\n[[rule]]\nid = \"like\"\ndimension = \"engagement\"\non = \"social_like\"\npoints = 1\n";

    #[test]
    fn the_same_model_reuses_every_match() {
        assert!(matches!(
            matching(&model(MODEL), &model(MODEL)),
            Matching::Reuse
        ));
        let points = MODEL.replace("points = 10", "points = 15");
        assert!(matches!(
            matching(&model(MODEL), &model(&points)),
            Matching::Reuse
        ));
        // An attribute rule's condition: attribute rules store no matches.
        let title = MODEL.replace("equals = \"vp\"", "equals = \"cto\"");
        assert_ne!(title, MODEL);
        assert!(matches!(
            matching(&model(MODEL), &model(&title)),
            Matching::Reuse
        ));
        // An attribute rule added first: the event rules' matches move.
        let first = MODEL.replacen(
            "[[rule]]",
            "[[rule]]\nid = \"vp2\"\ndimension = \"fit\"\npoints = 1\n[[rule]]",
            1,
        );
        assert!(matches!(
            matching(&model(MODEL), &model(&first)),
            Matching::Partial(_)
        ));
    }

    #[test]
    fn an_added_rule_is_matched_alone_and_the_others_carry_over() {
        let added = format!("{MODEL}{LIKE}");
        let Matching::Partial(r) = matching(&model(MODEL), &model(&added)) else {
            panic!("partial expected");
        };
        assert_eq!(r.types, vec!["social_like".to_string()]);
        assert_eq!(r.again, vec![false, false, false, true]);
        assert_eq!(r.carried, vec![Some(0), Some(1), Some(2)]);
    }

    #[test]
    fn a_removed_rule_moves_the_matches_of_the_rules_after_it() {
        let removed = MODEL.replace(
            "[[rule]]\nid = \"click\"\ndimension = \"engagement\"\non = \"email_click\"\npoints = 5\n",
            "",
        );
        assert_ne!(removed, MODEL);
        let Matching::Partial(r) = matching(&model(MODEL), &model(&removed)) else {
            panic!("partial expected");
        };
        assert!(r.types.is_empty());
        assert_eq!(r.carried, vec![Some(0), None, Some(1)]);
        let old = [hit(Target::Rule(1)), hit(Target::Rule(2))];
        let carried: Vec<_> = r.carried(&old).collect();
        assert_eq!(carried, vec![hit(Target::Rule(1))]);
    }

    #[test]
    fn conditions_are_compared_by_names_not_numbers() {
        // `path` is numbered as `url` was: the pricing rule matches again.
        let new_property = MODEL.replace("property = \"url\"", "property = \"path\"");
        let Matching::Partial(r) = matching(&model(MODEL), &model(&new_property)) else {
            panic!("partial expected");
        };
        assert_eq!(r.again, vec![false, false, true]);
        // A rule reading a new property first: the others carry over.
        let first = MODEL.replacen(
            "[[rule]]",
            "[[rule]]\nid = \"campaign\"\ndimension = \"engagement\"\non = \"page_view\"\npoints = 1\nwhen = { property = \"campaign\", exists = true }\n[[rule]]",
            1,
        );
        let Matching::Partial(r) = matching(&model(MODEL), &model(&first)) else {
            panic!("partial expected");
        };
        assert_eq!(r.again, vec![true, false, false, false]);
        assert_eq!(r.carried, vec![Some(1), Some(2), Some(3)]);
        // One more property, read by a rule at the end.
        let more = format!(
            "{MODEL}[[rule]]\nid = \"ref\"\ndimension = \"engagement\"\non = \"page_view\"\npoints = 1\nwhen = {{ property = \"referrer\", exists = true }}\n"
        );
        let Matching::Partial(r) = matching(&model(MODEL), &model(&more)) else {
            panic!("partial expected");
        };
        assert_eq!(r.types, vec!["page_view".to_string()]);
        assert_eq!(r.again, vec![false, false, false, true]);
    }

    #[test]
    fn a_contact_is_left_alone_only_when_no_changed_rule_touches_it() {
        let old = model(MODEL);
        let vp: Vec<Option<Box<str>>> = vec![Some("vp".into())];
        let nobody: Vec<Option<Box<str>>> = vec![None];
        // The click rule's points changed: a clicker moves, a visitor not.
        let new = model(&MODEL.replace("points = 5", "points = 6"));
        let u = unchanged(&old, &new).unwrap();
        let both = (&old, &new);
        assert!(!u.holds(both, &[hit(Target::Rule(1))], &nobody));
        assert!(u.holds(both, &[hit(Target::Rule(2))], &nobody));
        // The vp rule's points: the vp moves.
        let new = model(&MODEL.replace("points = 20", "points = 25"));
        let u = unchanged(&old, &new).unwrap();
        assert!(!u.holds((&old, &new), &[], &vp));
        assert!(u.holds((&old, &new), &[], &nobody));
        // A rule added at the end: those it does not match stay.
        let new = model(&format!("{MODEL}{LIKE}"));
        let u = unchanged(&old, &new).unwrap();
        assert!(u.holds((&old, &new), &[hit(Target::Rule(2))], &vp));
        // A renamed rule is another rule (one gone, one new in its place):
        // a contact it matches is scored again; one it does not, not.
        let new = model(&MODEL.replace("id = \"click\"", "id = \"clicked\""));
        let u = unchanged(&old, &new).unwrap();
        assert!(!u.holds((&old, &new), &[hit(Target::Rule(1))], &nobody));
        assert!(u.holds((&old, &new), &[hit(Target::Rule(2))], &vp));
        // A band threshold: everyone is scored again.
        let new = model(&MODEL.replace("min_score = 50", "min_score = 40"));
        assert!(unchanged(&old, &new).is_none());
        // A dimension's clamp too.
        let new = model(&MODEL.replace(
            "[[dimension]]\nid = \"fit\"",
            "[[dimension]]\nid = \"fit\"\nmax = 50",
        ));
        assert!(unchanged(&old, &new).is_none());
        // Engagement's decay: its rules' contacts move, the others stay.
        let decay = MODEL.replace(
            "[[dimension]]\nid = \"engagement\"",
            "[[dimension]]\nid = \"engagement\"\nhalf_life_days = 7",
        );
        assert_ne!(decay, MODEL);
        let new = model(&decay);
        let u = unchanged(&old, &new).unwrap();
        assert!(!u.holds((&old, &new), &[hit(Target::Rule(1))], &nobody));
        assert!(u.holds((&old, &new), &[], &vp));
        // Its window: the same.
        let window = MODEL.replace(
            "[[dimension]]\nid = \"engagement\"",
            "[[dimension]]\nid = \"engagement\"\nwindow_days = 30",
        );
        let new = model(&window);
        let u = unchanged(&old, &new).unwrap();
        assert!(!u.holds((&old, &new), &[hit(Target::Rule(2))], &nobody));
        assert!(u.holds((&old, &new), &[], &vp));
    }

    #[test]
    fn a_rule_added_first_leaves_the_others_the_same_rules() {
        let old = model(MODEL);
        let nobody: Vec<Option<Box<str>>> = vec![None];
        let first = MODEL.replacen(
            "[[rule]]",
            "[[rule]]\nid = \"like\"\ndimension = \"engagement\"\non = \"social_like\"\npoints = 1\n[[rule]]",
            1,
        );
        let new = model(&first);
        let u = unchanged(&old, &new).unwrap();
        let old_hits = [hit(Target::Rule(1)), hit(Target::Requalify(2))];
        assert!(u.holds((&old, &new), &old_hits, &nobody));
        let new_hits = [hit(Target::Rule(2)), hit(Target::Requalify(3))];
        assert!(u.same_matches(&old_hits, &new_hits));
        assert!(!u.same_matches(&old_hits, &new_hits[..1]));
        assert!(!u.same_matches(&new_hits, &new_hits));
    }

    #[test]
    fn rules_that_swap_places_are_not_the_same_rules() {
        // Sums are added in rule order: a contact matching either rule is
        // scored again; the rule that kept its place is still the same.
        let old = model(MODEL);
        let nobody: Vec<Option<Box<str>>> = vec![None];
        let click = "[[rule]]\nid = \"click\"\ndimension = \"engagement\"\non = \"email_click\"\npoints = 5\n";
        let pricing_at = MODEL.find("[[rule]]\nid = \"pricing\"").unwrap();
        let swapped = format!(
            "{}{}",
            MODEL[..pricing_at].replace(click, ""),
            &MODEL[pricing_at..]
        ) + click;
        assert_ne!(swapped, MODEL);
        let new = model(&swapped);
        let u = unchanged(&old, &new).unwrap();
        assert!(!u.holds((&old, &new), &[hit(Target::Rule(1))], &nobody));
        assert!(!u.holds((&old, &new), &[hit(Target::Rule(2))], &nobody));
        assert!(u.holds((&old, &new), &[], &nobody));
    }
}
