//! JSON-RPC 2.0 messages: what comes in, and the frames that go out.
//!
//! Outgoing messages are serialised straight from borrowed values into the
//! bytes of a frame, in the task that produces them, so the single writer only
//! copies bytes.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

/// Error codes used by the server.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    pub const REQUEST_CANCELLED: i64 = -32800;
    pub const REQUEST_FAILED: i64 = -32803;
}

/// A message from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    /// A response to a request of ours (we send none): ignored.
    Response,
    /// Valid JSON that is not a JSON-RPC message.
    Invalid {
        id: Value,
        reason: String,
    },
}

impl Incoming {
    /// Classifies a parsed message.
    pub fn from_value(value: Value) -> Incoming {
        let Value::Object(mut map) = value else {
            let reason = if value.is_array() {
                "batch requests are not supported"
            } else {
                "a JSON-RPC message must be an object"
            };
            return Incoming::Invalid {
                id: Value::Null,
                reason: reason.to_owned(),
            };
        };
        let id = map.remove("id");
        let params = map.remove("params").unwrap_or(Value::Null);
        match (map.remove("method"), id) {
            (Some(Value::String(method)), None) => Incoming::Notification { method, params },
            (Some(Value::String(method)), Some(id @ (Value::Number(_) | Value::String(_)))) => {
                Incoming::Request { id, method, params }
            }
            (Some(Value::String(_)), Some(Value::Null)) => Incoming::Invalid {
                id: Value::Null,
                reason: "a request id must be a number or a string".to_owned(),
            },
            (Some(Value::String(_)), Some(_)) => Incoming::Invalid {
                id: Value::Null,
                reason: "a request id must be a number or a string".to_owned(),
            },
            (Some(_), id) => Incoming::Invalid {
                id: id.unwrap_or(Value::Null),
                reason: "`method` must be a string".to_owned(),
            },
            (None, Some(_)) if map.contains_key("result") || map.contains_key("error") => {
                Incoming::Response
            }
            (None, id) => Incoming::Invalid {
                id: id.unwrap_or(Value::Null),
                reason: "the message has no `method`".to_owned(),
            },
        }
    }
}

#[derive(Serialize)]
struct ResponseOut<'a, R: Serialize> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: &'a R,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: i64,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
}

#[derive(Serialize)]
struct NotificationOut<'a, P: Serialize> {
    jsonrpc: &'static str,
    method: &'a str,
    params: &'a P,
}

fn to_bytes(value: &impl Serialize) -> Bytes {
    // Serialising our own types into a Vec cannot fail.
    Bytes::from(serde_json::to_vec(value).expect("serialisable message"))
}

/// A success response.
pub fn response(id: &Value, result: &impl Serialize) -> Bytes {
    to_bytes(&ResponseOut {
        jsonrpc: "2.0",
        id,
        result,
    })
}

/// An error response.
pub fn error(id: &Value, code: i64, message: &str, data: Option<&Value>) -> Bytes {
    to_bytes(&ErrorOut {
        jsonrpc: "2.0",
        id,
        error: ErrorBody {
            code,
            message,
            data,
        },
    })
}

/// A notification.
pub fn notification(method: &str, params: &impl Serialize) -> Bytes {
    to_bytes(&NotificationOut {
        jsonrpc: "2.0",
        method,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies() {
        assert!(matches!(
            Incoming::from_value(json!({"jsonrpc":"2.0","id":1,"method":"x"})),
            Incoming::Request { method, params: Value::Null, .. } if method == "x"
        ));
        assert!(matches!(
            Incoming::from_value(json!({"jsonrpc":"2.0","method":"initialized","params":[]})),
            Incoming::Notification { .. }
        ));
        assert_eq!(
            Incoming::from_value(json!({"id":1,"result":null})),
            Incoming::Response
        );
        assert!(matches!(
            Incoming::from_value(json!([1])),
            Incoming::Invalid { .. }
        ));
        assert!(
            matches!(Incoming::from_value(json!({"id":7})), Incoming::Invalid { id, .. } if id == json!(7))
        );
    }

    #[test]
    fn serialises() {
        assert_eq!(
            &response(&json!("a"), &json!(null))[..],
            br#"{"jsonrpc":"2.0","id":"a","result":null}"#
        );
        assert_eq!(
            &error(&json!(1), -1, "m", Some(&json!({"k":1})))[..],
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m","data":{"k":1}}}"#
        );
    }
}
