//! JSON-RPC 2.0 messages: what comes in, and the frames that go out.
//!
//! Outgoing messages are serialised straight from borrowed values into the
//! bytes of a frame, in the task that produces them, so the single writer only
//! copies bytes.

use std::fmt;

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

/// A request id: an integer or a string, compared by value (`1` and `1.0`
/// are the same id; `1` and `"1"` are not).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestId {
    Number(i64),
    String(String),
}

/// A message from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Request {
        id: RequestId,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    /// A response to a request of ours (we send none): ignored.
    Response,
    /// Valid JSON that is not a JSON-RPC message; `id` is the request's id
    /// as sent, when it could be read, else null.
    Invalid {
        id: Value,
        reason: String,
    },
}

impl RequestId {
    /// The id of a request, or why it cannot be one.
    pub fn from_value(value: &Value) -> Result<RequestId, &'static str> {
        const WHY: &str = "a request id must be an integer or a string";
        match value {
            Value::String(s) => Ok(RequestId::String(s.clone())),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Ok(RequestId::Number(i)),
                // `1.0` and `1e0` are the integer 1.
                (None, Some(f))
                    if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 =>
                {
                    Ok(RequestId::Number(f as i64))
                }
                _ => Err(WHY),
            },
            _ => Err(WHY),
        }
    }

    /// The id as JSON, for the response.
    pub fn to_value(&self) -> Value {
        match self {
            RequestId::Number(n) => Value::from(*n),
            RequestId::String(s) => Value::from(s.as_str()),
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl Incoming {
    /// Classifies a parsed message.
    pub fn from_value(value: Value) -> Incoming {
        let Value::Object(mut map) = value else {
            let reason = if value.is_array() {
                "batches (a JSON array of messages) are not supported: send each message in its own frame"
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
        let version_ok = map.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
        let method = map.remove("method");
        if !version_ok && method.is_some() {
            return Incoming::Invalid {
                id: id.unwrap_or(Value::Null),
                reason: "`jsonrpc` must be \"2.0\"".to_owned(),
            };
        }
        match (method, id) {
            (Some(Value::String(method)), None) => Incoming::Notification { method, params },
            (Some(Value::String(method)), Some(id)) => match RequestId::from_value(&id) {
                Ok(id) => Incoming::Request { id, method, params },
                Err(reason) => Incoming::Invalid {
                    // A fractional number is still the client's id; an object is not.
                    id: if id.is_number() { id } else { Value::Null },
                    reason: reason.to_owned(),
                },
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

/// A frame whose body is not JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseFailure {
    /// The request's id, when it can still be read from the text.
    pub id: Value,
    pub detail: String,
}

/// Parses a frame's body. Lone UTF-16 surrogate escapes (`"\ud83d"`, what
/// JavaScript produces when a prompt is cut mid-emoji) and invalid UTF-8
/// become U+FFFD rather than failing the message. When it still fails, the
/// id is read from the text where it can be, so the error is answered to it.
pub fn parse(body: &[u8]) -> Result<Value, ParseFailure> {
    let error = match serde_json::from_slice::<Value>(body) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let text = String::from_utf8_lossy(body);
    let repaired = crate::extract::surrogates::replace_lone_surrogates(&text);
    let candidate = repaired.as_deref().unwrap_or(&text);
    if let Ok(value) = serde_json::from_str::<Value>(candidate) {
        tracing::debug!(%error, "a frame needed repair (lone surrogates or invalid UTF-8)");
        return Ok(value);
    }
    Err(ParseFailure {
        id: top_level_id(candidate).unwrap_or(Value::Null),
        detail: format!("parse error: {error}"),
    })
}

/// The value of the top-level `"id"` member of broken JSON, when it is a
/// number or a string that can be read.
fn top_level_id(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let end = string_end(bytes, i)?;
                if depth == 1 && &bytes[i..end] == b"\"id\"" {
                    let rest = text[end..].trim_start().strip_prefix(':')?;
                    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
                    return match values.next()? {
                        Ok(id @ (Value::Number(_) | Value::String(_))) => Some(id),
                        _ => None,
                    };
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index just past the string that starts at `start` (a quote).
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
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
    fn lone_surrogates_and_broken_frames() {
        let v =
            parse(br#"{"jsonrpc":"2.0","id":4,"method":"m","params":{"t":"x\ud83d"}}"#).unwrap();
        assert_eq!(v["params"]["t"], "x\u{FFFD}");
        let failure =
            parse(br#"{"jsonrpc":"2.0","params":{"id":1},"id":"a-1","method":"m", oops}"#)
                .unwrap_err();
        assert_eq!(failure.id, json!("a-1"));
        assert_eq!(parse(b"{\"id\": [1], x").unwrap_err().id, Value::Null);
        assert_eq!(parse(b"garbage").unwrap_err().id, Value::Null);
    }

    #[test]
    fn ids_are_typed() {
        let id = |v: Value| RequestId::from_value(&v);
        assert_eq!(id(json!(1)), id(json!(1.0)));
        assert_eq!(id(json!(1)), Ok(RequestId::Number(1)));
        assert_ne!(id(json!(1)), id(json!("1")));
        assert!(id(json!(1.5)).is_err());
        assert!(id(json!(null)).is_err());
        assert!(id(json!({"a": 1})).is_err());
        assert_eq!(RequestId::Number(7).to_value(), json!(7));
    }

    #[test]
    fn version_is_checked() {
        assert!(matches!(
            Incoming::from_value(json!({"jsonrpc":"1.0","id":3,"method":"x"})),
            Incoming::Invalid { id, .. } if id == json!(3)
        ));
        assert!(matches!(
            Incoming::from_value(json!({"id":3,"method":"x"})),
            Incoming::Invalid { .. }
        ));
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
