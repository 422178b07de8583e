//! Conditions: the `when = {..}` tables of rules and stages.
//!
//! A condition is either a *leaf* (one subject and one or more operators, all
//! of which must hold) or a combinator (`all`, `any`, `not`). Conditions are
//! compiled once, when the model is validated: names become small ids,
//! string operands are folded to lower case and regular expressions are
//! built, so evaluating one per event costs no allocation for ASCII values.

use std::borrow::Cow;

use regex::Regex;

/// Index of an attribute name in the model's [`Vocabulary`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrId(pub u16);

/// Index of an event property name in the model's [`Vocabulary`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PropId(pub u16);

/// The attribute and property names a model reads. Inputs only need to keep
/// these; everything else in a contact or event cannot change a score.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vocabulary {
    /// Attribute names, indexed by [`AttrId`].
    pub attributes: Vec<String>,
    /// Event property names, indexed by [`PropId`].
    pub properties: Vec<String>,
}

impl Vocabulary {
    /// The id of an attribute name, if the model reads it.
    pub fn attribute(&self, name: &str) -> Option<AttrId> {
        self.attributes
            .iter()
            .position(|a| a == name)
            .map(|i| AttrId(i as u16))
    }

    /// The id of a property name, if the model reads it.
    pub fn property(&self, name: &str) -> Option<PropId> {
        self.properties
            .iter()
            .position(|a| a == name)
            .map(|i| PropId(i as u16))
    }

    pub(crate) fn intern_attribute(&mut self, name: &str) -> AttrId {
        match self.attribute(name) {
            Some(id) => id,
            None => {
                self.attributes.push(name.to_string());
                AttrId((self.attributes.len() - 1) as u16)
            }
        }
    }

    pub(crate) fn intern_property(&mut self, name: &str) -> PropId {
        match self.property(name) {
            Some(id) => id,
            None => {
                self.properties.push(name.to_string());
                PropId((self.properties.len() - 1) as u16)
            }
        }
    }
}

/// What a leaf looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A contact attribute (`attribute = "job_title"`).
    Attribute(AttrId),
    /// A property of the event being matched (`property = "url"`); event
    /// rules only.
    Property(PropId),
    /// A dimension's clamped value, by index in model order; stages only.
    Dimension(usize),
    /// The weighted 0-100 score; stages only.
    Score,
}

/// One operator of a leaf, with its compiled operand.
#[derive(Clone, Debug)]
pub enum Op {
    /// Equal after trimming, ignoring case. Operand is lower case.
    Equals(String),
    /// Present and not equal after trimming, ignoring case.
    NotEquals(String),
    /// Equal to one of the list, after trimming, ignoring case.
    In(Vec<String>),
    /// Contains the operand, ignoring case.
    Contains(String),
    /// Starts with the operand (after trimming), ignoring case.
    StartsWith(String),
    /// Ends with the operand (after trimming), ignoring case.
    EndsWith(String),
    /// The regular expression matches somewhere in the value as given
    /// (not trimmed; write `(?i)` for case-insensitive matching).
    Matches(Regex),
    /// Parsed as a decimal number, greater than the operand.
    Gt(f64),
    /// Parsed as a decimal number, at least the operand.
    Gte(f64),
    /// Parsed as a decimal number, less than the operand.
    Lt(f64),
    /// Parsed as a decimal number, at most the operand.
    Lte(f64),
    /// The value is present (`true`) or missing (`false`).
    Exists(bool),
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub enum Condition {
    /// Every part holds (true when empty).
    All(Vec<Condition>),
    /// At least one part holds (false when empty).
    Any(Vec<Condition>),
    /// The part does not hold.
    Not(Box<Condition>),
    /// One subject, all operators hold.
    Leaf {
        /// What the operators look at.
        subject: Subject,
        /// Operators, all of which must hold.
        ops: Vec<Op>,
    },
}

/// What a condition can look at. Implementations return `None` for a
/// missing value; the defaults say "nothing known".
pub trait Facts {
    /// The contact's attribute, if present.
    fn attribute(&self, _id: AttrId) -> Option<&str> {
        None
    }
    /// The event's property, if present (event rules only).
    fn property(&self, _id: PropId) -> Option<&str> {
        None
    }
    /// A dimension's clamped value (stages only).
    fn dimension(&self, _index: usize) -> Option<f64> {
        None
    }
    /// The weighted score (stages only).
    fn score(&self) -> Option<f64> {
        None
    }
}

/// A value as a leaf sees it.
enum Value<'a> {
    Text(&'a str),
    Number(f64),
}

impl Condition {
    /// Whether the condition holds for these facts.
    pub fn holds<F: Facts + ?Sized>(&self, facts: &F) -> bool {
        match self {
            Condition::All(parts) => parts.iter().all(|c| c.holds(facts)),
            Condition::Any(parts) => parts.iter().any(|c| c.holds(facts)),
            Condition::Not(inner) => !inner.holds(facts),
            Condition::Leaf { subject, ops } => {
                let value = match subject {
                    Subject::Attribute(id) => facts.attribute(*id).map(Value::Text),
                    Subject::Property(id) => facts.property(*id).map(Value::Text),
                    Subject::Dimension(i) => facts.dimension(*i).map(Value::Number),
                    Subject::Score => facts.score().map(Value::Number),
                };
                ops.iter().all(|op| op_holds(op, value.as_ref()))
            }
        }
    }

    /// Whether any leaf of this condition looks at a contact attribute.
    pub fn reads_attributes(&self) -> bool {
        match self {
            Condition::All(p) | Condition::Any(p) => p.iter().any(Condition::reads_attributes),
            Condition::Not(inner) => inner.reads_attributes(),
            Condition::Leaf { subject, .. } => matches!(subject, Subject::Attribute(_)),
        }
    }

    /// Whether any leaf of this condition looks at an event property.
    pub fn reads_properties(&self) -> bool {
        match self {
            Condition::All(p) | Condition::Any(p) => p.iter().any(Condition::reads_properties),
            Condition::Not(inner) => inner.reads_properties(),
            Condition::Leaf { subject, .. } => matches!(subject, Subject::Property(_)),
        }
    }
}

fn op_holds(op: &Op, value: Option<&Value<'_>>) -> bool {
    let Some(value) = value else {
        return matches!(op, Op::Exists(false));
    };
    match (op, value) {
        (Op::Exists(want), _) => *want,
        (Op::Gt(x), v) => number(v).is_some_and(|n| n > *x),
        (Op::Gte(x), v) => number(v).is_some_and(|n| n >= *x),
        (Op::Lt(x), v) => number(v).is_some_and(|n| n < *x),
        (Op::Lte(x), v) => number(v).is_some_and(|n| n <= *x),
        (Op::Matches(re), Value::Text(t)) => re.is_match(t),
        (op, Value::Text(t)) => text_op_holds(op, t),
        // String operators on numbers are rejected by validation.
        (_, Value::Number(_)) => false,
    }
}

fn number(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Text(t) => parse_decimal(t),
    }
}

/// Reads a value as a decimal number, as the numeric operators do: trimmed,
/// optional sign, digits with an optional fraction and exponent. Infinity,
/// NaN and empty texts are not numbers.
pub fn parse_decimal(text: &str) -> Option<f64> {
    let t = trim(text);
    let first = *t.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// `str::trim`, with a fast path for the common value that has no white
/// space at either end.
pub fn trim(value: &str) -> &str {
    match (value.as_bytes().first(), value.as_bytes().last()) {
        (Some(&a), Some(&b)) if a > b' ' && a < 0x80 && b > b' ' && b < 0x80 => value,
        _ => value.trim(),
    }
}

fn text_op_holds(op: &Op, raw: &str) -> bool {
    let v = trim(raw);
    if v.is_ascii() {
        let vb = v.as_bytes();
        match op {
            Op::Equals(o) => v.eq_ignore_ascii_case(o),
            Op::NotEquals(o) => !v.eq_ignore_ascii_case(o),
            Op::In(list) => list.iter().any(|o| v.eq_ignore_ascii_case(o)),
            Op::Contains(o) => contains_ignore_ascii_case(vb, o.as_bytes()),
            Op::StartsWith(o) => {
                vb.len() >= o.len() && vb[..o.len()].eq_ignore_ascii_case(o.as_bytes())
            }
            Op::EndsWith(o) => {
                vb.len() >= o.len() && vb[vb.len() - o.len()..].eq_ignore_ascii_case(o.as_bytes())
            }
            _ => false,
        }
    } else {
        let lower: Cow<'_, str> = Cow::Owned(v.to_lowercase());
        let v = lower.as_ref();
        match op {
            Op::Equals(o) => v == o,
            Op::NotEquals(o) => v != o,
            Op::In(list) => list.iter().any(|o| v == o),
            Op::Contains(o) => v.contains(o.as_str()),
            Op::StartsWith(o) => v.starts_with(o.as_str()),
            Op::EndsWith(o) => v.ends_with(o.as_str()),
            _ => false,
        }
    }
}

fn contains_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    if needle.len() > hay.len() {
        return false;
    }
    let first = needle[0];
    let last_start = hay.len() - needle.len();
    let candidates = &hay[..=last_start];
    let rest = &needle[1..];
    memchr::memchr2_iter(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        candidates,
    )
    .any(|i| hay[i + 1..i + needle.len()].eq_ignore_ascii_case(rest))
}

/// Folds an operand the way values are compared: trimmed, lower case.
pub(crate) fn fold_operand(s: &str) -> String {
    s.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct F(Option<&'static str>);
    impl Facts for F {
        fn attribute(&self, _id: AttrId) -> Option<&str> {
            self.0
        }
    }

    fn leaf(op: Op) -> Condition {
        Condition::Leaf {
            subject: Subject::Attribute(AttrId(0)),
            ops: vec![op],
        }
    }

    #[test]
    fn what_a_condition_reads_is_found_at_any_depth() {
        let property = Condition::Leaf {
            subject: Subject::Property(PropId(0)),
            ops: vec![Op::Exists(true)],
        };
        let attribute = leaf(Op::Exists(false));
        let nested = Condition::All(vec![
            property.clone(),
            Condition::Not(Box::new(Condition::Any(vec![attribute.clone()]))),
        ]);
        assert!(nested.reads_attributes() && nested.reads_properties());
        assert!(!property.reads_attributes() && property.reads_properties());
        assert!(attribute.reads_attributes() && !attribute.reads_properties());
        assert!(!Condition::All(vec![]).reads_attributes());
    }

    #[test]
    fn string_operators_trim_and_ignore_case() {
        let c = leaf(Op::Equals("finance".into()));
        assert!(c.holds(&F(Some("  FINANCE "))));
        assert!(!c.holds(&F(Some("fin"))));
        let c = leaf(Op::EndsWith("@gmail.com".into()));
        assert!(c.holds(&F(Some("Ana@GMail.com "))));
        let c = leaf(Op::StartsWith("/pricing".into()));
        assert!(c.holds(&F(Some(" /Pricing/enterprise"))));
        let c = leaf(Op::Contains("/pricing".into()));
        assert!(c.holds(&F(Some("https://x.io/PRICING?a=1"))));
        assert!(!c.holds(&F(Some("/pric"))));
        let c = leaf(Op::In(vec!["br".into(), "japan".into()]));
        assert!(c.holds(&F(Some("Japan"))));
        assert!(!c.holds(&F(Some("Jap"))));
    }

    #[test]
    fn non_ascii_values_fold_case() {
        let c = leaf(Op::Equals(fold_operand("München")));
        assert!(c.holds(&F(Some("MÜNCHEN"))));
        let c = leaf(Op::Contains(fold_operand("Ü")));
        assert!(c.holds(&F(Some("Zürich"))));
    }

    #[test]
    fn missing_values_fail_everything_but_exists_false() {
        for op in [
            Op::Equals("x".into()),
            Op::NotEquals("x".into()),
            Op::In(vec![]),
            Op::Contains("".into()),
            Op::Gt(0.0),
            Op::Lte(0.0),
            Op::Exists(true),
            Op::Matches(Regex::new(".*").unwrap()),
        ] {
            assert!(!leaf(op).holds(&F(None)));
        }
        assert!(leaf(Op::Exists(false)).holds(&F(None)));
        assert!(!leaf(Op::Exists(false)).holds(&F(Some("x"))));
    }

    #[test]
    fn numbers_that_do_not_parse_are_false() {
        let c = leaf(Op::Gt(1000.0));
        assert!(c.holds(&F(Some(" 12000 "))));
        assert!(!c.holds(&F(Some("n/a"))));
        assert!(!c.holds(&F(Some("inf"))));
        assert!(!c.holds(&F(Some("NaN"))));
        assert!(!c.holds(&F(Some(""))));
        assert!(!leaf(Op::Lt(1.0)).holds(&F(Some("-inf"))));
        assert!(leaf(Op::Gte(7.5)).holds(&F(Some("7.5"))));
        assert!(leaf(Op::Lt(0.0)).holds(&F(Some("-1e3"))));
    }

    #[test]
    fn regex_sees_the_raw_value() {
        let c = leaf(Op::Matches(Regex::new("(?i)^\\s*student").unwrap()));
        assert!(c.holds(&F(Some("  Student"))));
        let c = leaf(Op::Matches(Regex::new("^student").unwrap()));
        assert!(!c.holds(&F(Some(" student"))));
    }

    #[test]
    fn combinators() {
        let t = leaf(Op::Exists(true));
        let f = leaf(Op::Exists(false));
        let x = F(Some("v"));
        assert!(Condition::All(vec![]).holds(&x));
        assert!(!Condition::Any(vec![]).holds(&x));
        assert!(Condition::Any(vec![f.clone(), t.clone()]).holds(&x));
        assert!(!Condition::All(vec![f.clone(), t.clone()]).holds(&x));
        assert!(Condition::Not(Box::new(f)).holds(&x));
    }
}
