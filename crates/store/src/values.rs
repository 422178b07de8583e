//! StoredContact JSON objects of text values (a contact's attributes, an event's
//! properties) read as a model reads them: by the model's attribute and
//! property ids, empty values as missing, other names skipped unread.

use std::collections::BTreeMap;

use leadscore_core::condition::Vocabulary;
use leadscore_core::scoring::PropertyLookup;

use crate::error::{Result, StoreError};

/// Parses a stored JSON object of text values.
pub fn parse_map(json: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("attributes: {e}")))
}

/// The values of the attributes a model reads, indexed by attribute id.
pub fn model_values(
    vocabulary: &Vocabulary,
    map: &BTreeMap<String, String>,
) -> Vec<Option<Box<str>>> {
    vocabulary
        .attributes
        .iter()
        .map(|a| {
            map.get(a)
                .filter(|v| !v.is_empty())
                .map(|v| Box::from(v.as_str()))
        })
        .collect()
}

/// Event properties the model reads, by property id.
pub struct EventProperties(pub Vec<Option<Box<str>>>);

impl EventProperties {
    /// Picks the model's properties out of name/value pairs.
    pub fn new<'a>(
        vocabulary: &Vocabulary,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> EventProperties {
        let mut v = vec![None; vocabulary.properties.len()];
        for (k, val) in pairs {
            if let Some(p) = vocabulary.property(k)
                && !val.is_empty()
            {
                v[p.0 as usize] = Some(Box::from(val));
            }
        }
        EventProperties(v)
    }
}

impl EventProperties {
    /// Reads the model's properties straight out of a stored JSON object of
    /// text values (as [`parse_map`] then [`EventProperties::new`] would, without
    /// building the map): other properties are skipped unread.
    pub fn from_json(vocabulary: &Vocabulary, json: &str) -> Result<EventProperties> {
        let v = pick_json(
            vocabulary.properties.len(),
            |name| vocabulary.property(name).map(|p| p.0 as usize),
            json,
        )
        .map_err(|e| StoreError::Corrupt(format!("properties: {e}")))?;
        Ok(EventProperties(v))
    }
}

/// The values of the attributes a model reads, straight out of a stored
/// JSON object of text values (as [`parse_map`] then [`model_values`]
/// would, without building the map).
pub fn model_values_json(vocabulary: &Vocabulary, json: &str) -> Result<Vec<Option<Box<str>>>> {
    attribute_values_json(&vocabulary.attributes, json)
}

/// The values of the named attributes, indexed as `names`, out of a stored
/// JSON object of text values; absent or empty values are `None`.
pub fn attribute_values_json(names: &[String], json: &str) -> Result<Vec<Option<Box<str>>>> {
    pick_json(
        names.len(),
        |name| names.iter().position(|a| a == name),
        json,
    )
    .map_err(|e| StoreError::Corrupt(format!("attributes: {e}")))
}

/// Picks some values out of a JSON object of text values: `slot` gives
/// the index (below `len`) of each wanted key; other keys are skipped
/// unread, and a repeated key keeps its last value (as a map would).
fn pick_json(
    len: usize,
    slot: impl Fn(&str) -> Option<usize>,
    json: &str,
) -> serde_json::Result<Vec<Option<Box<str>>>> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(json);
    let picked = Pick { len, slot }.deserialize(&mut de)?;
    de.end()?;
    Ok(picked)
}

/// Deserializes the values [`pick_json`] wants.
struct Pick<F> {
    len: usize,
    slot: F,
}

/// A JSON string, borrowed from the input when it has no escapes.
struct Text<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de, F: Fn(&str) -> Option<usize>> serde::de::DeserializeSeed<'de> for Pick<F> {
    type Value = Vec<Option<Box<str>>>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: Fn(&str) -> Option<usize>> serde::de::Visitor<'de> for Pick<F> {
    type Value = Vec<Option<Box<str>>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of text values")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut v = vec![None; self.len];
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match (self.slot)(&key) {
                Some(i) if i < self.len => {
                    let Text(value) = map.next_value::<Text<'de>>()?;
                    v[i] = (!value.is_empty()).then(|| Box::from(value.as_ref()));
                }
                _ => {
                    // Still a text value: the stored object holds nothing else.
                    map.next_value::<Text<'de>>()?;
                }
            }
        }
        Ok(v)
    }
}

impl PropertyLookup for EventProperties {
    fn get(&self, id: leadscore_core::condition::PropId) -> Option<&str> {
        self.0.get(id.0 as usize).and_then(|v| v.as_deref())
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use leadscore_core::Model;

    #[test]
    fn properties_read_from_json_as_from_the_map() {
        let model = Model::from_toml(
            r#"
name = "p"
[[dimension]]
id = "interest"
[[rule]]
id = "pro-plan-pricing"
points = 5
dimension = "interest"
on = "page_view"
when = { all = [{ property = "url", contains = "/pricing" }, { property = "plan", equals = "pro" }] }
"#,
        )
        .unwrap();
        let v = &model.vocabulary;
        for json in [
            r#"{}"#,
            r#"{"url":"/pricing","other":"x"}"#,
            r#"{"a":"1","plan":"","url":"/p\u00e9\"q"}"#,
            r#"{"plan":"pro","url":"/pricing","zz":"{\"nested\":1}"}"#,
        ] {
            let map = parse_map(json).unwrap();
            let want = EventProperties::new(v, map.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            assert_eq!(
                EventProperties::from_json(v, json).unwrap().0,
                want.0,
                "{json}"
            );
        }
        assert!(EventProperties::from_json(v, r#"{"url":"#).is_err());
        assert!(EventProperties::from_json(v, r#"{"url":"a"} x"#).is_err());
    }

    #[test]
    fn attributes_read_from_json_as_from_the_map() {
        let names: Vec<String> = ["title", "country", "size"].map(String::from).to_vec();
        let vocabulary = Vocabulary {
            attributes: names.clone(),
            properties: Vec::new(),
        };
        for json in [
            r#"{}"#,
            r#"{"title":"VP Sales","industry":"software"}"#,
            r#"{"country":"","size":"50","title":"Eng\u00e9neer \"ops\""}"#,
            // A repeated key keeps its last value, as the map does.
            r#"{"title":"first","title":"second"}"#,
            // Names are matched exactly, after unescaping.
            r#"{"Title":"x","ti\u0074le":"escaped"}"#,
        ] {
            let want = model_values(&vocabulary, &parse_map(json).unwrap());
            assert_eq!(
                model_values_json(&vocabulary, json).unwrap(),
                want,
                "{json}"
            );
            assert_eq!(attribute_values_json(&names, json).unwrap(), want, "{json}");
        }
        // Anything but an object of text values is refused, read or not.
        for bad in [
            r#"{"title":1}"#,
            r#"{"other":["a"]}"#,
            r#"["a"]"#,
            r#"{"title":"a""#,
        ] {
            assert!(parse_map(bad).is_err(), "{bad}");
            assert!(model_values_json(&vocabulary, bad).is_err(), "{bad}");
        }
    }
}
