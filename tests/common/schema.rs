//! The published JSON Schemas of the protocol (`protocol/*.schema.json`), used to check real answers.

use serde_json::{Value, json};

/// Panics unless `value` is valid against `$defs/<def>` of `protocol/methods.schema.json`.
pub fn assert_matches_methods_schema(def: &str, value: &Value) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/protocol/methods.schema.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let document: Value = serde_json::from_str(&text).expect("the methods schema is JSON");
    assert!(
        document["$defs"].get(def).is_some(),
        "no $defs/{def} in the methods schema"
    );
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": document["$defs"],
        "$ref": format!("#/$defs/{def}"),
    });
    let validator = jsonschema::validator_for(&schema).expect("the methods schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{def} does not match protocol/methods.schema.json: {errors:?}\n{value}"
    );
}
