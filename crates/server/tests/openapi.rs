//! The service's OpenAPI document is a valid OpenAPI 3.1 document: checked
//! against the OpenAPI Initiative's own JSON Schema (a copy in
//! `tests/fixtures`), not just by its shape.

use serde_json::Value;

fn official_schema() -> Value {
    let text = include_str!("fixtures/openapi-3.1-schema.json");
    serde_json::from_str(text).expect("the fixture is JSON")
}

fn errors(doc: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(&official_schema()).expect("the schema compiles");
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn the_document_validates_against_the_openapi_3_1_schema() {
    let doc = leadscore_server::openapi::document();
    assert_eq!(errors(&doc), Vec::<String>::new());
}

#[test]
fn the_validator_catches_a_broken_document() {
    // The same document with a response missing its required description
    // and an unknown top-level field: the check must fail, so that the
    // test above can.
    let mut doc = leadscore_server::openapi::document();
    let paths = doc["paths"].as_object_mut().expect("paths");
    let (_, item) = paths.iter_mut().next().expect("a path");
    let op = item
        .as_object_mut()
        .expect("item")
        .values_mut()
        .next()
        .expect("an operation");
    op["responses"]["200"] = serde_json::json!({ "content": {} });
    doc["surprise"] = Value::Bool(true);
    let found = errors(&doc);
    assert!(found.len() >= 2, "{found:?}");
}
