//! The SQL engines a model compiles for, and how each spells what the
//! query needs: quoting, text functions, numbers, time, JSON and maps.
//!
//! Everything from the model or the command line reaches the query through
//! [`Dialect::ident`] or [`Dialect::text`], so a rule value such as
//! `'); DROP TABLE events; --` stays a string.

use crate::SqlError;

/// An engine the compiler writes SQL for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// DuckDB 1.1 or later (regular expressions are RE2).
    DuckDb,
    /// PostgreSQL 12 or later, in a UTF-8 database.
    Postgres,
    /// Spark SQL 3.4 or later (regular expressions are Java's).
    Spark,
}

/// Characters Rust's `str::trim` removes (Unicode White_Space), which the
/// contract's string operators trim before comparing.
const WHITE_SPACE: &[char] = &[
    '\t', '\n', '\u{0B}', '\u{0C}', '\r', ' ', '\u{85}', '\u{A0}', '\u{1680}', '\u{2000}',
    '\u{2001}', '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}',
    '\u{2009}', '\u{200A}', '\u{2028}', '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}',
];

impl Dialect {
    /// The dialect named on the command line (`duckdb`, `postgres`, `spark`).
    pub fn from_name(name: &str) -> Option<Dialect> {
        match name.to_ascii_lowercase().as_str() {
            "duckdb" => Some(Dialect::DuckDb),
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "spark" | "sparksql" => Some(Dialect::Spark),
            _ => None,
        }
    }

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::DuckDb => "duckdb",
            Dialect::Postgres => "postgres",
            Dialect::Spark => "spark",
        }
    }

    /// A quoted identifier (a column or table name).
    pub fn ident(self, name: &str) -> Result<String, SqlError> {
        if name.is_empty() || name.contains('\0') {
            return Err(SqlError::Name {
                name: name.to_string(),
                why: "a name must be non-empty and free of NUL characters".into(),
            });
        }
        Ok(match self {
            Dialect::DuckDb | Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            Dialect::Spark => {
                if name.contains("${") {
                    return Err(SqlError::Name {
                        name: name.to_string(),
                        why: "Spark substitutes variables written ${..} in SQL text".into(),
                    });
                }
                format!("`{}`", name.replace('`', "``"))
            }
        })
    }

    /// A possibly qualified table name (`schema.table`): each dot-separated
    /// part quoted.
    pub fn table(self, name: &str) -> Result<String, SqlError> {
        let parts: Result<Vec<String>, SqlError> =
            name.split('.').map(|part| self.ident(part)).collect();
        Ok(parts?.join("."))
    }

    /// A string literal holding exactly `value`.
    pub fn text(self, value: &str) -> Result<String, SqlError> {
        if value.contains('\0') {
            return Err(SqlError::Nul {
                value: value.to_string(),
            });
        }
        Ok(match self {
            Dialect::DuckDb => format!("'{}'", value.replace('\'', "''")),
            // E'' strings read the same whatever standard_conforming_strings says.
            Dialect::Postgres => {
                format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
            }
            Dialect::Spark => {
                let mut out = String::from("'");
                for c in value.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\'' => out.push_str("\\'"),
                        // `$` would start a ${variable} substitution.
                        '$' => out.push_str("\\u0024"),
                        c if (c as u32) < 0x20 || c == '\u{7F}' => {
                            out.push_str(&format!("\\u{:04X}", c as u32))
                        }
                        c => out.push(c),
                    }
                }
                out.push('\'');
                out
            }
        })
    }

    /// The engine's text type.
    pub fn text_type(self) -> &'static str {
        match self {
            Dialect::DuckDb => "VARCHAR",
            Dialect::Postgres => "text",
            Dialect::Spark => "STRING",
        }
    }

    /// The engine's 64-bit float type.
    pub fn double_type(self) -> &'static str {
        match self {
            Dialect::DuckDb | Dialect::Spark => "DOUBLE",
            Dialect::Postgres => "double precision",
        }
    }

    /// `expr` as text.
    pub fn as_text(self, expr: &str) -> String {
        format!("CAST({expr} AS {})", self.text_type())
    }

    /// A double literal with exactly the value `x` (finite).
    pub fn double(self, x: f64) -> String {
        format!("CAST('{x:?}' AS {})", self.double_type())
    }

    /// A 64-bit integer literal.
    pub fn bigint(self, n: i64) -> String {
        format!("CAST({n} AS BIGINT)")
    }

    /// `expr` (text) trimmed of Unicode white space at both ends, as the
    /// string operators compare it.
    pub fn trim(self, expr: &str) -> String {
        let set: String = WHITE_SPACE.iter().collect();
        // The set has no NUL, so text() cannot fail.
        let set = self.text(&set).unwrap_or_default();
        match self {
            // DuckDB's trim with a character set is slow (about 0.25 s per
            // million values): it is called only on values that start or
            // end with white space, found by a regular expression.
            Dialect::DuckDb => {
                let class: String = WHITE_SPACE
                    .iter()
                    .map(|c| format!("\\x{{{:X}}}", u32::from(*c)))
                    .collect();
                format!(
                    "(CASE WHEN regexp_matches({expr}, '^[{class}]|[{class}]$') THEN trim({expr}, {set}) ELSE {expr} END)"
                )
            }
            Dialect::Postgres => format!("btrim({expr}, {set})"),
            Dialect::Spark => format!("trim(BOTH {set} FROM {expr})"),
        }
    }

    /// Nanoseconds since the Unix epoch of a timestamp column (a time
    /// stamp with or without zone, or RFC 3339 text; zone-less values are
    /// UTC, the session's zone being set to UTC by [`Dialect::preamble`]).
    pub fn epoch_nanos(self, expr: &str) -> String {
        match self {
            Dialect::DuckDb => format!("(epoch_us(CAST({expr} AS TIMESTAMPTZ)) * 1000)"),
            Dialect::Postgres => format!(
                "(CAST(extract(epoch FROM CAST({expr} AS timestamptz)) * 1000000 AS bigint) * 1000)"
            ),
            Dialect::Spark => format!("(unix_micros(CAST({expr} AS TIMESTAMP)) * 1000)"),
        }
    }

    /// The engine's clock at the start of the query, in nanoseconds.
    pub fn now_nanos(self) -> String {
        match self {
            Dialect::DuckDb => "(epoch_us(get_current_timestamp()) * 1000)".into(),
            Dialect::Postgres => {
                "(CAST(extract(epoch FROM now()) * 1000000 AS bigint) * 1000)".into()
            }
            Dialect::Spark => "(unix_micros(current_timestamp()) * 1000)".into(),
        }
    }

    /// Statements run before the query: the session's time zone is UTC
    /// (time stamps without zone are read as UTC) and, for PostgreSQL, the
    /// decimal reader the numeric operators use.
    pub fn preamble(self) -> String {
        match self {
            Dialect::DuckDb => "SET TimeZone = 'UTC';\n".into(),
            Dialect::Postgres => format!("SET TIME ZONE 'UTC';\n{PG_DECIMAL}\n"),
            Dialect::Spark => "SET spark.sql.session.timeZone = UTC;\n".into(),
        }
    }

    /// An array of the non-NULL values of `items` (integer expressions).
    pub fn present(self, items: &[String]) -> String {
        let items = items.join(", ");
        match self {
            Dialect::DuckDb => format!("list_filter([{items}], r -> r IS NOT NULL)"),
            Dialect::Postgres => format!("array_remove(ARRAY[{items}], NULL)"),
            Dialect::Spark => format!("filter(array({items}), r -> r IS NOT NULL)"),
        }
    }

    /// The number of elements of an array.
    pub fn len(self, array: &str) -> String {
        match self {
            Dialect::DuckDb => format!("len({array})"),
            Dialect::Postgres => format!("cardinality({array})"),
            Dialect::Spark => format!("size({array})"),
        }
    }

    /// A set-returning select item: one row per element of an array.
    pub fn unnest(self, array: &str) -> String {
        match self {
            Dialect::DuckDb | Dialect::Postgres => format!("unnest({array})"),
            Dialect::Spark => format!("explode({array})"),
        }
    }

    /// The keyword after `name AS` that makes an engine compute a common
    /// table expression once although several steps read it (Spark has
    /// none; it plans each reader separately).
    pub fn materialized(self) -> &'static str {
        match self {
            Dialect::DuckDb | Dialect::Postgres => "MATERIALIZED ",
            Dialect::Spark => "",
        }
    }

    /// `expr` (trimmed text) read as the contract reads a decimal number:
    /// optional sign, digits with an optional fraction and exponent; NULL
    /// when it is not one or does not fit a finite double.
    pub fn decimal(self, expr: &str) -> String {
        const SHAPE: &str = "^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$";
        match self {
            Dialect::DuckDb => format!(
                "(CASE WHEN regexp_matches({expr}, '{SHAPE}') AND isfinite(TRY_CAST({expr} AS DOUBLE)) THEN TRY_CAST({expr} AS DOUBLE) END)"
            ),
            Dialect::Postgres => {
                format!("(CASE WHEN {expr} ~ '{SHAPE}' THEN pg_temp.leadscore_decimal({expr}) END)")
            }
            Dialect::Spark => format!(
                "(CASE WHEN {expr} RLIKE '{SHAPE}' AND abs(TRY_CAST({expr} AS DOUBLE)) < CAST('Infinity' AS DOUBLE) THEN TRY_CAST({expr} AS DOUBLE) END)"
            ),
        }
    }

    /// Whether the compiled pattern `pattern` (see [`crate::regex`]) is
    /// found anywhere in `expr`.
    pub fn regex_search(self, expr: &str, pattern: &str) -> Result<String, SqlError> {
        let p = self.text(pattern)?;
        Ok(match self {
            Dialect::DuckDb => format!("regexp_matches({expr}, {p})"),
            Dialect::Postgres => format!("({expr} ~ {p})"),
            Dialect::Spark => format!("({expr} RLIKE {p})"),
        })
    }

    /// Whether `folded` (lower case text) contains `needle` (non-empty).
    pub fn contains(self, folded: &str, needle: &str) -> Result<String, SqlError> {
        let n = self.text(needle)?;
        Ok(match self {
            Dialect::DuckDb => format!("contains({folded}, {n})"),
            Dialect::Postgres => format!("(strpos({folded}, {n}) > 0)"),
            Dialect::Spark => format!("(instr({folded}, {n}) > 0)"),
        })
    }

    /// Whether `folded` starts with `prefix` (non-empty).
    pub fn starts_with(self, folded: &str, prefix: &str) -> Result<String, SqlError> {
        let p = self.text(prefix)?;
        let n = prefix.chars().count();
        Ok(match self {
            Dialect::DuckDb => format!("starts_with({folded}, {p})"),
            Dialect::Postgres | Dialect::Spark => format!("(left({folded}, {n}) = {p})"),
        })
    }

    /// Whether `folded` ends with `suffix` (non-empty).
    pub fn ends_with(self, folded: &str, suffix: &str) -> Result<String, SqlError> {
        let s = self.text(suffix)?;
        let n = suffix.chars().count();
        Ok(match self {
            Dialect::DuckDb => format!("ends_with({folded}, {s})"),
            Dialect::Postgres | Dialect::Spark => format!("(right({folded}, {n}) = {s})"),
        })
    }

    /// The text value under `key` of a JSON (DuckDB, PostgreSQL) or map
    /// (Spark) column; NULL when absent or JSON null.
    pub fn field(self, column: &str, key: &str) -> Result<String, SqlError> {
        Ok(match self {
            Dialect::DuckDb => {
                let path = format!("$.\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""));
                format!("json_extract_string({column}, {})", self.text(&path)?)
            }
            Dialect::Postgres => format!("({column} ->> {})", self.text(key)?),
            Dialect::Spark => format!("try_element_at({column}, {})", self.text(key)?),
        })
    }
}

/// PostgreSQL's cast of text to double fails on a decimal out of range;
/// the contract reads an overflow as "not a number" and an underflow as 0.
const PG_DECIMAL: &str =
    "CREATE OR REPLACE FUNCTION pg_temp.leadscore_decimal(t text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE AS $leadscore$
BEGIN
  RETURN CAST(t AS double precision);
EXCEPTION WHEN others THEN
  RETURN CASE WHEN t ~ '[eE]-' THEN CAST(0 AS double precision) END;
END
$leadscore$;";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_keep_quotes_and_backslashes_as_text() {
        let v = "'); DROP TABLE events; -- \\ $x";
        assert_eq!(
            Dialect::DuckDb.text(v).unwrap(),
            "'''); DROP TABLE events; -- \\ $x'"
        );
        assert_eq!(
            Dialect::Postgres.text(v).unwrap(),
            "E'\\'); DROP TABLE events; -- \\\\ $x'"
        );
        assert_eq!(
            Dialect::Spark.text(v).unwrap(),
            "'\\'); DROP TABLE events; -- \\\\ \\u0024x'"
        );
        assert!(Dialect::DuckDb.text("a\0b").is_err());
    }

    #[test]
    fn identifiers_double_their_quote() {
        assert_eq!(Dialect::DuckDb.ident("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(Dialect::Spark.ident("a`b").unwrap(), "`a``b`");
        assert_eq!(Dialect::Postgres.table("s.t").unwrap(), "\"s\".\"t\"");
        assert!(Dialect::Spark.ident("${x}").is_err());
        assert!(Dialect::DuckDb.ident("").is_err());
    }

    #[test]
    fn doubles_round_trip() {
        assert_eq!(Dialect::DuckDb.double(0.1), "CAST('0.1' AS DOUBLE)");
        assert_eq!(Dialect::DuckDb.double(70.0), "CAST('70.0' AS DOUBLE)");
        assert_eq!(Dialect::Spark.double(1e300), "CAST('1e300' AS DOUBLE)");
    }
}
