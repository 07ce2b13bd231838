//! The OpenAPI 3.1 document and the human docs page, both generated from [`ENDPOINTS`] and
//! the request/answer types' JSON schemas, so they cannot drift from the code.

use std::sync::OnceLock;

use axum::{Json, http::Method, response::Html};
use schemars::{SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use super::{ENDPOINTS, ErrorBody};

/// The OpenAPI document (built once).
pub fn openapi() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

pub async fn openapi_json() -> Json<Value> {
    Json(openapi().clone())
}

fn build() -> Value {
    let mut generator: SchemaGenerator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "#/components/schemas/".into())
        .into_generator();
    let error = generator.subschema_for::<ErrorBody>().to_value();
    let mut paths = Map::new();
    for endpoint in ENDPOINTS.iter() {
        let request = endpoint.request.map(|f| f(&mut generator).to_value());
        let response = (endpoint.response)(&mut generator).to_value();
        let mut operations = Map::new();
        for method in endpoint.methods {
            let mut op = json!({
                "summary": endpoint.summary,
                "tags": [endpoint.tag],
                "responses": {
                    "200": {"description": "the answer", "content": {"application/json": {"schema": response}}},
                    "400": {"description": "bad parameters", "content": {"application/json": {"schema": error}}},
                    "401": {"description": "missing or wrong bearer token (when one is configured)", "content": {"application/json": {"schema": error}}},
                    "503": {"description": "probes not attached yet", "content": {"application/json": {"schema": error}}},
                },
            });
            if let Some(request) = &request {
                if *method == Method::GET {
                    op["parameters"] = Value::Array(query_parameters(&generator, request));
                } else {
                    op["requestBody"] = json!({
                        "required": false,
                        "content": {"application/json": {"schema": request}},
                    });
                }
            }
            operations.insert(method.as_str().to_lowercase(), op);
        }
        paths.insert(endpoint.path.to_owned(), Value::Object(operations));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "netspy",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Per-process network telemetry from eBPF: connect attempts with their real protocol and result, TCP outcomes, packet drops with the kernel's reason, host-name lookups and TCP retransmissions. Compatible with the ebpf-server API. Errors are {\"error\": \"...\"}.",
        },
        "paths": paths,
        "components": {
            "schemas": generator.take_definitions(true),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}

/// A GET endpoint's query parameters: the properties of its request type.
fn query_parameters(generator: &SchemaGenerator, request: &Value) -> Vec<Value> {
    let Some(name) = request
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
    else {
        return Vec::new();
    };
    let Some(properties) = generator
        .definitions()
        .get(name)
        .and_then(|d| d.get("properties"))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, schema)| {
            json!({
                "name": name,
                "in": "query",
                "required": false,
                "description": schema.get("description").cloned().unwrap_or(Value::Null),
                "schema": schema,
            })
        })
        .collect()
}

pub async fn docs_page() -> Html<String> {
    static PAGE: OnceLock<String> = OnceLock::new();
    Html(PAGE.get_or_init(render_page).clone())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn type_of(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join("|"),
        _ => schema
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("value")
            .to_owned(),
    }
}

fn render_page() -> String {
    let doc = openapi();
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>netspy API</title><style>\
         body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}\
         code,pre{background:#f4f4f4;padding:.1em .3em}pre{padding:.6em;overflow-x:auto}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}\
         h2{margin-top:2em}.m{font-weight:bold;color:#06c}</style></head><body>\
         <h1>netspy API</h1><p>Per-process network telemetry from eBPF. Every endpoint answers JSON; \
         errors are <code>{\"error\": \"...\"}</code>. Data endpoints take parameters in the query string (GET) \
         or a JSON body (POST). The machine-readable description is <a href=\"/openapi.json\">/openapi.json</a>.</p>",
    );
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (path, operations) in &paths {
        let Some(operations) = operations.as_object() else {
            continue;
        };
        let methods: Vec<String> = operations.keys().map(|m| m.to_uppercase()).collect();
        let summary = operations
            .values()
            .next()
            .and_then(|o| o.get("summary"))
            .and_then(Value::as_str)
            .unwrap_or("");
        html.push_str(&format!(
            "<h2><span class=\"m\">{}</span> <code>{}</code></h2><p>{}</p>",
            methods.join(" | "),
            escape(path),
            escape(summary)
        ));
        let parameters = operations
            .get("get")
            .and_then(|o| o.get("parameters"))
            .and_then(Value::as_array);
        if let Some(parameters) = parameters.filter(|p| !p.is_empty()) {
            html.push_str("<table><tr><th>parameter</th><th>type</th><th>meaning</th></tr>");
            for p in parameters {
                let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                let description = p.get("description").and_then(Value::as_str).unwrap_or("");
                let kind = p.get("schema").map(type_of).unwrap_or_default();
                html.push_str(&format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    escape(name),
                    escape(&kind),
                    escape(description)
                ));
            }
            html.push_str("</table>");
            html.push_str(&format!(
                "<pre>curl -s 'localhost:8080{path}?duration_seconds=300'\ncurl -s localhost:8080{path} -d '{{\"command\": \"curl\"}}'</pre>",
                path = escape(path)
            ));
        } else {
            html.push_str(&format!(
                "<pre>curl -s localhost:8080{}</pre>",
                escape(path)
            ));
        }
    }
    html.push_str("</body></html>");
    html
}
