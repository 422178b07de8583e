//! Conditions (`when = {..}`) as SQL boolean expressions that are always
//! TRUE or FALSE, never NULL: a missing value (SQL NULL) makes every
//! operator false but `exists = false`, as the contract says, and `not`
//! then negates a definite answer.

use leadscore_core::condition::{Condition, Op, Subject};

use crate::SqlError;
use crate::dialect::Dialect;

/// What a leaf's subject is in the query: a text column (attribute or
/// property, NULL when missing) or a number column (dimension or score).
pub enum Value {
    /// A text expression, NULL when the value is missing.
    Text(String),
    /// A non-NULL double expression.
    Number(String),
}

/// Compiles conditions for one place of the model (named in errors).
pub struct Conditions<'a> {
    /// The engine.
    pub dialect: Dialect,
    /// Where the condition is, for messages (`rule "exec-title"`).
    pub place: String,
    /// The query expression of each subject.
    pub subject: &'a dyn Fn(&Subject) -> Value,
}

impl Conditions<'_> {
    /// The condition as a never-NULL boolean expression.
    pub fn sql(&self, condition: &Condition) -> Result<String, SqlError> {
        Ok(match condition {
            Condition::All(parts) if parts.is_empty() => "TRUE".into(),
            Condition::Any(parts) if parts.is_empty() => "FALSE".into(),
            Condition::All(parts) => self.join(parts, " AND ")?,
            Condition::Any(parts) => self.join(parts, " OR ")?,
            Condition::Not(inner) => format!("(NOT {})", self.sql(inner)?),
            Condition::Leaf { subject, ops } => {
                let value = (self.subject)(subject);
                let ops: Result<Vec<String>, SqlError> =
                    ops.iter().map(|op| self.op(op, &value)).collect();
                let ops = ops?;
                if ops.is_empty() {
                    "TRUE".into()
                } else {
                    format!("({})", ops.join(" AND "))
                }
            }
        })
    }

    fn join(&self, parts: &[Condition], with: &str) -> Result<String, SqlError> {
        let parts: Result<Vec<String>, SqlError> = parts.iter().map(|p| self.sql(p)).collect();
        Ok(format!("({})", parts?.join(with)))
    }

    fn op(&self, op: &Op, value: &Value) -> Result<String, SqlError> {
        let d = self.dialect;
        let text = match value {
            Value::Number(n) => {
                return Ok(match op {
                    Op::Gt(x) => format!("({n} > {})", d.double(*x)),
                    Op::Gte(x) => format!("({n} >= {})", d.double(*x)),
                    Op::Lt(x) => format!("({n} < {})", d.double(*x)),
                    Op::Lte(x) => format!("({n} <= {})", d.double(*x)),
                    Op::Exists(want) => want.to_string().to_uppercase(),
                    // Validation refuses string operators on numbers.
                    _ => "FALSE".into(),
                });
            }
            Value::Text(t) => t,
        };
        let folded = format!("lower({})", d.trim(text));
        let number = || d.decimal(&d.trim(text));
        let holds = match op {
            Op::Exists(true) => return Ok(format!("({text} IS NOT NULL)")),
            Op::Exists(false) => return Ok(format!("({text} IS NULL)")),
            Op::Equals(o) => format!("{folded} = {}", d.text(o)?),
            Op::NotEquals(o) => format!("{folded} <> {}", d.text(o)?),
            Op::In(list) if list.is_empty() => return Ok("FALSE".into()),
            Op::In(list) => {
                let items: Result<Vec<String>, SqlError> = list.iter().map(|o| d.text(o)).collect();
                format!("{folded} IN ({})", items?.join(", "))
            }
            Op::Contains(o) if o.is_empty() => format!("{text} IS NOT NULL"),
            Op::Contains(o) => d.contains(&folded, o)?,
            Op::StartsWith(o) if o.is_empty() => format!("{text} IS NOT NULL"),
            Op::StartsWith(o) => d.starts_with(&folded, o)?,
            Op::EndsWith(o) if o.is_empty() => format!("{text} IS NOT NULL"),
            Op::EndsWith(o) => d.ends_with(&folded, o)?,
            Op::Matches(re) => {
                let pattern =
                    crate::regex::translate(re.as_str(), d).map_err(|why| SqlError::Regex {
                        place: self.place.clone(),
                        pattern: re.as_str().to_string(),
                        dialect: d.name(),
                        why,
                    })?;
                d.regex_search(text, &pattern)?
            }
            Op::Gt(x) => format!("{} > {}", number(), d.double(*x)),
            Op::Gte(x) => format!("{} >= {}", number(), d.double(*x)),
            Op::Lt(x) => format!("{} < {}", number(), d.double(*x)),
            Op::Lte(x) => format!("{} <= {}", number(), d.double(*x)),
        };
        Ok(format!("COALESCE({holds}, FALSE)"))
    }
}
