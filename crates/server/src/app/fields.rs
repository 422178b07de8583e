//! Form fields and query strings: what an empty field means, and how a
//! value is written into a link.

/// A form field's value, trimmed; `None` when empty (no filter, no value).
pub fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A value percent-encoded for a URL's path or query (every byte but
/// letters, digits and `-_.~`).
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_for_links() {
        assert_eq!(encode("c 1/\"é\""), "c%201%2F%22%C3%A9%22");
        assert_eq!(encode("abc-_.~"), "abc-_.~");
        assert_eq!(some("  "), None);
        assert_eq!(some(" hot "), Some("hot".into()));
    }
}
