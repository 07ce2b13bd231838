//! The one gate every incoming MCP message passes, on every transport (stdio, Streamable
//! HTTP, legacy SSE): a size limit, then JSON-RPC 2.0's own error codes for what is wrong
//! (-32700 not JSON, -32600 not a valid request, -32602 bad params of a known method), so a
//! client always gets an answer that names its mistake instead of silence or a wrong code.

use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage};
use serde_json::{Value, json};

/// Largest MCP message accepted, on every transport.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// MCP methods a client may send (rmcp's names for them): params that do not fit one of
/// these are -32602, not an unknown method (rmcp's untagged parsing would take them for
/// custom requests).
fn is_known_method(method: &str) -> bool {
    use rmcp::model::{
        CallToolRequestMethod, CancelTaskMethod, CompleteRequestMethod, ConstString,
        DiscoverRequestMethod, GetPromptRequestMethod, GetSkillRequestMethod, GetTaskMethod,
        InitializeResultMethod, ListPromptsRequestMethod, ListResourceTemplatesRequestMethod,
        ListResourcesRequestMethod, ListSkillsRequestMethod, ListToolsRequestMethod,
        PingRequestMethod, ReadResourceDirectoryRequestMethod, ReadResourceRequestMethod,
        SetLevelRequestMethod, SubscribeRequestMethod, SubscriptionsListenRequestMethod,
        UnsubscribeRequestMethod, UpdateTaskMethod,
    };
    [
        CallToolRequestMethod::VALUE,
        CancelTaskMethod::VALUE,
        CompleteRequestMethod::VALUE,
        DiscoverRequestMethod::VALUE,
        GetPromptRequestMethod::VALUE,
        GetSkillRequestMethod::VALUE,
        GetTaskMethod::VALUE,
        InitializeResultMethod::VALUE,
        ListPromptsRequestMethod::VALUE,
        ListResourceTemplatesRequestMethod::VALUE,
        ListResourcesRequestMethod::VALUE,
        ListSkillsRequestMethod::VALUE,
        ListToolsRequestMethod::VALUE,
        PingRequestMethod::VALUE,
        ReadResourceDirectoryRequestMethod::VALUE,
        ReadResourceRequestMethod::VALUE,
        SetLevelRequestMethod::VALUE,
        SubscribeRequestMethod::VALUE,
        SubscriptionsListenRequestMethod::VALUE,
        UnsubscribeRequestMethod::VALUE,
        UpdateTaskMethod::VALUE,
    ]
    .contains(&method)
}

/// A message refused before it reaches the server, as JSON-RPC describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// -32700, -32600 or -32602.
    pub code: i32,
    /// What is wrong, for the client's developer.
    pub message: String,
    /// The request's id when it had a valid one, else null.
    pub id: Value,
    /// The message was a notification (a method, no id): JSON-RPC answers those with
    /// nothing, so stdio stays silent (HTTP still has to give a status).
    pub notification: bool,
}

impl Fault {
    fn new(code: i32, message: impl Into<String>, id: Value) -> Self {
        Self {
            code,
            message: message.into(),
            id,
            notification: false,
        }
    }

    /// A message over [`MAX_MESSAGE_BYTES`].
    pub fn too_large() -> Self {
        Self::new(
            -32600,
            format!(
                "Invalid Request: the message is over {MAX_MESSAGE_BYTES} bytes, the limit of every netspy MCP transport"
            ),
            Value::Null,
        )
    }

    /// The JSON-RPC error response.
    pub fn to_json(&self) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": {"code": self.code, "message": self.message},
        })
    }
}

/// One incoming message, parsed and checked.
pub fn parse(bytes: &[u8]) -> Result<ClientJsonRpcMessage, Fault> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(Fault::too_large());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        Fault::new(
            -32700,
            format!("Parse error: not a JSON text: {e}"),
            Value::Null,
        )
    })?;
    let notification = value.get("method").is_some() && value.get("id").is_none();
    let refused = |fault: Fault| Fault {
        notification,
        ..fault
    };
    let id = checked_shape(&value).map_err(refused)?;
    let message: ClientJsonRpcMessage = serde_json::from_value(value).map_err(|e| {
        refused(Fault::new(
            -32600,
            format!("Invalid Request: {e}"),
            id.clone(),
        ))
    })?;
    if let JsonRpcMessage::Request(request) = &message
        && let ClientRequest::CustomRequest(custom) = &request.request
        && is_known_method(&custom.method)
    {
        return Err(Fault::new(
            -32602,
            format!(
                "Invalid params for {}: {}",
                custom.method,
                params_problem(&custom.method, custom.params.as_ref())
            ),
            id,
        ));
    }
    Ok(message)
}

/// The envelope rules JSON-RPC 2.0 states; the message's id (null when it has none).
fn checked_shape(value: &Value) -> Result<Value, Fault> {
    let invalid =
        |why: &str, id: &Value| Fault::new(-32600, format!("Invalid Request: {why}"), id.clone());
    let Some(object) = value.as_object() else {
        return Err(invalid(
            if value.is_array() {
                "batches are not supported (MCP removed JSON-RPC batching); send one message at a time"
            } else {
                "a message must be a JSON object"
            },
            &Value::Null,
        ));
    };
    let id = match object.get("id") {
        None => Value::Null,
        Some(id @ Value::String(_)) => id.clone(),
        Some(id @ Value::Number(n)) if n.is_i64() || n.is_u64() => id.clone(),
        Some(_) => {
            return Err(invalid(
                "\"id\" must be a string or an integer",
                &Value::Null,
            ));
        }
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("\"jsonrpc\" must be \"2.0\"", &id));
    }
    match object.get("method") {
        Some(Value::String(_)) => {}
        Some(_) => return Err(invalid("\"method\" must be a string", &id)),
        None if object.contains_key("id")
            && (object.contains_key("result") != object.contains_key("error")) => {}
        None => {
            return Err(invalid(
                "neither a request, a notification nor a response (no \"method\", or no \"id\" with one \"result\" or \"error\")",
                &id,
            ));
        }
    }
    match object.get("params") {
        None | Some(Value::Object(_)) => Ok(id),
        Some(_) => Err(Fault::new(
            -32602,
            "Invalid params: \"params\" must be an object",
            id,
        )),
    }
}

/// Why the params of a known method did not parse, in the words of its schema.
fn params_problem(method: &str, params: Option<&Value>) -> String {
    if method != "tools/call" {
        return "they do not match the method's schema".to_owned();
    }
    match params.and_then(|p| p.get("name")) {
        None => return "\"name\" (the tool to call) is missing".to_owned(),
        Some(Value::String(_)) => {}
        Some(_) => return "\"name\" must be a string".to_owned(),
    }
    match params.and_then(|p| p.get("arguments")) {
        None | Some(Value::Object(_)) => "they do not match the method's schema".to_owned(),
        Some(_) => "\"arguments\" must be an object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &[u8]) -> (i32, Value) {
        let fault = parse(text).unwrap_err();
        (fault.code, fault.id)
    }

    #[test]
    fn each_kind_of_broken_message_gets_its_own_code() {
        assert_eq!(code(b"{not json").0, -32700);
        assert_eq!(code(b"{\"x\": NaN}").0, -32700);
        assert_eq!(code(b"\"jsonrpc\xff\"").0, -32700);
        assert_eq!(code(b"[]").0, -32600);
        assert_eq!(
            code(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).0,
            -32600
        );
        assert_eq!(code(b"42").0, -32600);
        assert_eq!(
            code(br#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#),
            (-32600, json!(7))
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).0,
            -32600
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#).0,
            -32600
        );
        assert_eq!(code(br#"{"jsonrpc":"2.0","id":1,"method":3}"#).0, -32600);
        assert_eq!(code(br#"{"jsonrpc":"2.0","id":1}"#).0, -32600);
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":[1]}"#),
            (-32602, json!("a"))
        );
        let no_name =
            parse(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{}}"#).unwrap_err();
        assert_eq!((no_name.code, &no_name.id), (-32602, &json!(2)));
        assert!(no_name.message.contains("\"name\""), "{}", no_name.message);
        let array_args = parse(
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_connections","arguments":[1]}}"#,
        )
        .unwrap_err();
        assert_eq!(array_args.code, -32602);
        assert!(
            array_args
                .message
                .contains("\"arguments\" must be an object")
        );
        let huge = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert_eq!(parse(&huge).unwrap_err(), Fault::too_large());
    }

    #[test]
    fn a_broken_notification_is_marked_so_that_stdio_does_not_answer_it() {
        let fault =
            parse(br#"{"jsonrpc":"1.0","method":"notifications/initialized"}"#).unwrap_err();
        assert!(fault.notification);
        assert!(
            !parse(br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#)
                .unwrap_err()
                .notification
        );
        assert!(
            !parse(b"{oops").unwrap_err().notification,
            "no way to know: answered"
        );
    }

    #[test]
    fn valid_messages_pass() {
        for ok in [
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.as_slice(),
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            br#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"t","arguments":{"pid":1}}}"#,
            br#"{"jsonrpc":"2.0","id":4,"result":{}}"#,
            br#"{"jsonrpc":"2.0","id":9,"method":"vendor/unknown"}"#,
        ] {
            assert!(parse(ok).is_ok(), "{}", String::from_utf8_lossy(ok));
        }
        let fault = Fault::too_large().to_json();
        assert_eq!(fault["id"], Value::Null);
        assert_eq!(fault["error"]["code"], -32600);
    }
}
