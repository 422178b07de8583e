//! A model's regular expressions (Rust `regex` syntax) rewritten for each
//! engine's regex dialect, matching exactly the same texts.
//!
//! The pattern is parsed into `regex-syntax`'s high-level tree, in which
//! case folding and Unicode classes (`\w`, `\d`, `(?i)`) are already
//! explicit code point ranges. Those ranges are written out with hex
//! escapes, so the result does not depend on how an engine defines `\w` or
//! folds case. Word boundaries (`\b`) are Unicode-aware in Rust and ASCII in
//! RE2: PostgreSQL and Java get them as look-arounds; DuckDB (RE2, no
//! look-arounds) gets them where they sit at the pattern's edges next to
//! characters that are all word or all non-word characters, which is where
//! patterns such as `\b(vp|director)\b` put them. Anything an engine cannot
//! express exactly is refused with the reason.

use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look};

use crate::dialect::Dialect;

/// The pattern rewritten for `dialect`, searched anywhere in a value; or
/// why it cannot be.
pub fn translate(pattern: &str, dialect: Dialect) -> Result<String, String> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())?;
    let w = Writer { dialect };
    match dialect {
        Dialect::DuckDb => w.edges(&hir),
        Dialect::Postgres | Dialect::Spark => w.hir(&hir),
    }
}

struct Writer {
    dialect: Dialect,
}

/// Unicode word characters, as Rust's `\w` and `\b` see them.
fn word_class(ascii: bool) -> ClassUnicode {
    let mut class = ClassUnicode::empty();
    if ascii {
        for (a, b) in [('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')] {
            class.push(ClassUnicodeRange::new(a, b));
        }
        return class;
    }
    let hir = regex_syntax::parse(r"\w").ok();
    if let Some(HirKind::Class(Class::Unicode(c))) = hir.as_ref().map(Hir::kind) {
        class = c.clone();
    }
    class
}

/// The characters a match of `parts` (in sequence) can start with; `None`
/// when unknown (a part that can match the empty string comes first).
fn first_chars(parts: &[Hir]) -> Option<ClassUnicode> {
    let first = parts.first()?;
    edge_chars(first, true)
}

/// The characters a match of `parts` can end with.
fn last_chars(parts: &[Hir]) -> Option<ClassUnicode> {
    let last = parts.last()?;
    edge_chars(last, false)
}

fn edge_chars(hir: &Hir, front: bool) -> Option<ClassUnicode> {
    match hir.kind() {
        HirKind::Literal(lit) => {
            let s = std::str::from_utf8(&lit.0).ok()?;
            let c = if front {
                s.chars().next()?
            } else {
                s.chars().next_back()?
            };
            Some(ClassUnicode::new([ClassUnicodeRange::new(c, c)]))
        }
        HirKind::Class(Class::Unicode(c)) => Some(c.clone()),
        HirKind::Capture(c) => edge_chars(&c.sub, front),
        HirKind::Repetition(r) if r.min >= 1 => edge_chars(&r.sub, front),
        HirKind::Concat(parts) => {
            if front {
                first_chars(parts)
            } else {
                last_chars(parts)
            }
        }
        HirKind::Alternation(branches) => {
            let mut all = ClassUnicode::empty();
            for b in branches {
                all.union(&edge_chars(b, front)?);
            }
            Some(all)
        }
        _ => None,
    }
}

/// Whether every character of `chars` is a word character (`Some(true)`),
/// none is (`Some(false)`), or they are mixed.
fn wordness(chars: &ClassUnicode, word: &ClassUnicode) -> Option<bool> {
    let mut outside = chars.clone();
    outside.difference(word);
    let mut inside = chars.clone();
    inside.intersect(word);
    match (inside.ranges().is_empty(), outside.ranges().is_empty()) {
        (false, true) => Some(true),
        (true, false) => Some(false),
        _ => None,
    }
}

fn word_look(look: Look) -> Option<bool> {
    match look {
        Look::WordUnicode => Some(false),
        Look::WordAscii => Some(true),
        _ => None,
    }
}

impl Writer {
    /// RE2's rewriting: word boundaries at the edges become "the character
    /// before is (not) a word character, or there is none", which a search
    /// may consume.
    fn edges(&self, hir: &Hir) -> Result<String, String> {
        match hir.kind() {
            HirKind::Capture(c) => self.edges(&c.sub),
            HirKind::Alternation(branches) => {
                let parts: Result<Vec<String>, String> =
                    branches.iter().map(|b| self.edges(b)).collect();
                Ok(format!("(?:{})", parts?.join("|")))
            }
            HirKind::Concat(parts) => {
                let mut parts = parts.as_slice();
                let mut before = String::new();
                let mut after = String::new();
                if let Some(HirKind::Look(look)) = parts.first().map(Hir::kind)
                    && let Some(ascii) = word_look(*look)
                {
                    let word = word_class(ascii);
                    parts = &parts[1..];
                    before = match first_chars(parts).and_then(|c| wordness(&c, &word)) {
                        Some(true) => format!("(?:\\A|{})", self.class(&negated(&word))),
                        Some(false) => self.class(&word),
                        None => return Err(boundary_refused()),
                    };
                }
                if let Some(HirKind::Look(look)) = parts.last().map(Hir::kind)
                    && let Some(ascii) = word_look(*look)
                {
                    let word = word_class(ascii);
                    parts = &parts[..parts.len() - 1];
                    after = match last_chars(parts).and_then(|c| wordness(&c, &word)) {
                        Some(true) => format!("(?:\\z|{})", self.class(&negated(&word))),
                        Some(false) => self.class(&word),
                        None => return Err(boundary_refused()),
                    };
                }
                let body: Result<Vec<String>, String> = parts.iter().map(|p| self.hir(p)).collect();
                Ok(format!("{before}{}{after}", body?.concat()))
            }
            _ => self.hir(hir),
        }
    }

    fn hir(&self, hir: &Hir) -> Result<String, String> {
        Ok(match hir.kind() {
            HirKind::Empty => "(?:)".into(),
            HirKind::Literal(lit) => {
                let s = std::str::from_utf8(&lit.0)
                    .map_err(|_| "a byte-oriented pattern ((?-u)) cannot be translated")?;
                s.chars().map(|c| self.char(c)).collect()
            }
            HirKind::Class(Class::Unicode(c)) => self.class(c),
            HirKind::Class(Class::Bytes(_)) => {
                return Err("a byte-oriented class ((?-u)) cannot be translated".into());
            }
            HirKind::Look(look) => self.look(*look)?,
            HirKind::Repetition(r) => {
                let limit = match self.dialect {
                    Dialect::Postgres => 255,
                    Dialect::DuckDb => 1000,
                    Dialect::Spark => u32::MAX,
                };
                if r.min > limit || r.max.is_some_and(|m| m > limit) {
                    return Err(format!(
                        "a repetition count over {limit} is beyond {}'s regular expressions",
                        self.dialect.name()
                    ));
                }
                let sub = self.hir(&r.sub)?;
                let count = match (r.min, r.max) {
                    (0, None) => "*".to_string(),
                    (1, None) => "+".to_string(),
                    (0, Some(1)) => "?".to_string(),
                    (n, None) => format!("{{{n},}}"),
                    (n, Some(m)) if n == m => format!("{{{n}}}"),
                    (n, Some(m)) => format!("{{{n},{m}}}"),
                };
                format!("(?:{sub}){count}")
            }
            HirKind::Capture(c) => format!("(?:{})", self.hir(&c.sub)?),
            HirKind::Concat(parts) => {
                let parts: Result<Vec<String>, String> =
                    parts.iter().map(|p| self.hir(p)).collect();
                parts?.concat()
            }
            HirKind::Alternation(branches) => {
                let parts: Result<Vec<String>, String> =
                    branches.iter().map(|b| self.hir(b)).collect();
                format!("(?:{})", parts?.join("|"))
            }
        })
    }

    fn look(&self, look: Look) -> Result<String, String> {
        let pg = self.dialect == Dialect::Postgres;
        Ok(match look {
            Look::Start => "\\A".into(),
            Look::End if pg => "\\Z".into(),
            Look::End => "\\z".into(),
            _ if self.dialect == Dialect::DuckDb => return Err(boundary_refused()),
            Look::StartLF => "(?:\\A|(?<=\\n))".replace("\\n", &self.char('\n')),
            Look::EndLF if pg => "(?:\\Z|(?=\\n))".replace("\\n", &self.char('\n')),
            Look::EndLF => "(?:\\z|(?=\\n))".replace("\\n", &self.char('\n')),
            Look::WordUnicode
            | Look::WordAscii
            | Look::WordUnicodeNegate
            | Look::WordAsciiNegate => {
                let ascii = matches!(look, Look::WordAscii | Look::WordAsciiNegate);
                let w = self.class(&word_class(ascii));
                if matches!(look, Look::WordUnicode | Look::WordAscii) {
                    format!("(?:(?<={w})(?!{w})|(?<!{w})(?={w}))")
                } else {
                    format!("(?:(?<={w})(?={w})|(?<!{w})(?!{w}))")
                }
            }
            other => return Err(format!("the assertion {other:?} has no translation")),
        })
    }

    fn char(&self, c: char) -> String {
        if c.is_ascii_alphanumeric() {
            return c.to_string();
        }
        self.escape(c)
    }

    fn escape(&self, c: char) -> String {
        let n = c as u32;
        match self.dialect {
            Dialect::DuckDb | Dialect::Spark => format!("\\x{{{n:X}}}"),
            Dialect::Postgres if n <= 0xFFFF => format!("\\u{n:04X}"),
            Dialect::Postgres => format!("\\U{n:08X}"),
        }
    }

    fn class(&self, class: &ClassUnicode) -> String {
        let mut out = String::from("[");
        let mut any = false;
        for r in class.ranges() {
            let (mut lo, hi) = (r.start(), r.end());
            // PostgreSQL text holds no NUL, and its regexes refuse \u0000.
            if self.dialect == Dialect::Postgres && lo == '\0' {
                if hi == '\0' {
                    continue;
                }
                lo = '\u{1}';
            }
            any = true;
            out.push_str(&self.escape(lo));
            if hi != lo {
                out.push('-');
                out.push_str(&self.escape(hi));
            }
        }
        if !any {
            // An empty class matches nothing.
            return match self.dialect {
                Dialect::Postgres => "[^\\u0001-\\U0010FFFF]".into(),
                _ => "[^\\x{0}-\\x{10FFFF}]".into(),
            };
        }
        out.push(']');
        out
    }
}

fn negated(class: &ClassUnicode) -> ClassUnicode {
    let mut c = class.clone();
    c.negate();
    c
}

fn boundary_refused() -> String {
    "DuckDB's regular expressions (RE2) have no Unicode word boundaries or \
     look-arounds: only a \\b at the start or end of the pattern, next to \
     characters that are all word (or all non-word) characters, can be \
     translated; ^ and $ only without (?m)"
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_folding_becomes_explicit_classes() {
        let p = translate("(?i)vp", Dialect::DuckDb).unwrap();
        assert_eq!(p, "[\\x{56}\\x{76}][\\x{50}\\x{70}]");
    }

    #[test]
    fn duckdb_word_boundaries_at_the_edges() {
        let p = translate(r"\b(ceo|vp)\b", Dialect::DuckDb).unwrap();
        assert!(
            p.starts_with("(?:\\A|[^") || p.starts_with("(?:\\A|["),
            "{p}"
        );
        assert!(p.ends_with("])"), "{p}");
        assert!(translate(r"a\bb", Dialect::DuckDb).is_err());
        assert!(translate(r"(?m)^a", Dialect::DuckDb).is_err());
    }

    #[test]
    fn postgres_and_java_get_look_arounds() {
        let p = translate(r"a\b", Dialect::Postgres).unwrap();
        assert!(p.contains("(?<=["), "{p}");
        let p = translate(r"x{300}", Dialect::Postgres);
        assert!(p.is_err());
        assert!(translate(r"x{300}", Dialect::Spark).is_ok());
    }
}
