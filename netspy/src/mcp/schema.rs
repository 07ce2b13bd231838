//! Tool schemas every MCP client takes. schemars writes a nullable field as
//! `"type": ["string", "null"]`, legal JSON Schema that single-type dialects (Gemini's
//! function declarations, the MCP Inspector's `--strict` check) refuse; and numeric formats
//! such as `uint64`, which JSON Schema does not define, make validators that check formats
//! (the TypeScript SDK's) warn on every field. The same meaning, spelled portably: one
//! `anyOf` branch per type, and integer ranges said by `minimum`/`maximum` alone.

use serde_json::{Map, Value};

/// Formats schemars writes for Rust's numeric types: no JSON Schema validator knows them,
/// and their meaning is in `type`, `minimum` and `maximum` already.
const NUMERIC_FORMATS: [&str; 12] = [
    "int8", "int16", "int32", "int64", "int", "uint8", "uint16", "uint32", "uint64", "uint",
    "float", "double",
];

/// Keywords that describe a schema rather than constrain its value: they stay beside the
/// `anyOf`, the rest go into the branch of the non-null type.
const ANNOTATIONS: [&str; 6] = [
    "description",
    "title",
    "default",
    "examples",
    "deprecated",
    "readOnly",
];

/// Keywords whose values are data, not schemas: never rewritten.
const DATA: [&str; 4] = ["enum", "const", "default", "examples"];

/// Rewrites `schema` and every schema inside it portably.
pub fn make_portable(schema: &mut Map<String, Value>) {
    for (key, value) in schema.iter_mut() {
        if !DATA.contains(&key.as_str()) {
            portable_value(value);
        }
    }
    if schema
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| NUMERIC_FORMATS.contains(&f))
    {
        schema.remove("format");
    }
    let Some(Value::Array(types)) = schema.get("type") else {
        return;
    };
    let types: Vec<Value> = types.clone();
    schema.remove("type");
    // The constraints (format, ranges, items, enum, ...) belong to every typed branch.
    let constraints: Map<String, Value> = schema
        .iter()
        .filter(|(k, _)| !ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    schema.retain(|k, _| ANNOTATIONS.contains(&k.as_str()));
    let branches = types
        .into_iter()
        .map(|t| {
            let mut branch = Map::from_iter([("type".to_owned(), t.clone())]);
            if t != "null" {
                branch.extend(constraints.clone());
                // An optional enum lists null among its values: the null branch says it.
                if let Some(Value::Array(values)) = branch.get_mut("enum") {
                    values.retain(|v| !v.is_null());
                }
            }
            Value::Object(branch)
        })
        .collect();
    schema.insert("anyOf".to_owned(), Value::Array(branches));
}

fn portable_value(value: &mut Value) {
    match value {
        Value::Object(map) => make_portable(map),
        Value::Array(items) => items.iter_mut().for_each(portable_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn portable(schema: Value) -> Value {
        let Value::Object(mut map) = schema else {
            panic!("an object");
        };
        make_portable(&mut map);
        Value::Object(map)
    }

    #[test]
    fn nullable_fields_become_one_branch_per_type_with_the_same_constraints() {
        assert_eq!(
            portable(json!({
                "type": "object",
                "properties": {
                    "pid": {"description": "Only this pid.", "type": ["integer", "null"],
                            "format": "uint32", "minimum": 0, "maximum": 4_294_967_295u32},
                    "name": {"type": ["string", "null"], "maxLength": 1024},
                    "count": {"type": "integer", "format": "uint64", "minimum": 0},
                    "when": {"type": "string", "format": "date-time"},
                    "items": {"type": "array", "items": {"type": ["number", "null"],
                              "format": "double"}},
                    "kind": {"type": ["string", "null"], "enum": ["tcp", "udp", null],
                             "default": {"type": ["string", "null"]}},
                    "either": {"type": ["integer", "string"], "minimum": 1},
                },
            })),
            json!({
                "type": "object",
                "properties": {
                    "pid": {"description": "Only this pid.", "anyOf": [
                        {"type": "integer", "minimum": 0, "maximum": 4_294_967_295u32},
                        {"type": "null"},
                    ]},
                    "name": {"anyOf": [{"type": "string", "maxLength": 1024}, {"type": "null"}]},
                    "count": {"type": "integer", "minimum": 0},
                    "when": {"type": "string", "format": "date-time"},
                    "items": {"type": "array", "items": {"anyOf": [
                        {"type": "number"}, {"type": "null"},
                    ]}},
                    "kind": {"default": {"type": ["string", "null"]}, "anyOf": [
                        {"type": "string", "enum": ["tcp", "udp"]}, {"type": "null"},
                    ]},
                    "either": {"anyOf": [
                        {"type": "integer", "minimum": 1}, {"type": "string", "minimum": 1},
                    ]},
                },
            })
        );
    }
}
