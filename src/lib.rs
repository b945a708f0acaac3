//! llm-sidecar: a stdio JSON-RPC sidecar that lets any editor talk to any LLM
//! server configured the way AutoDev's "Custom LLM Server" dialog does.
//!
//! A completion flows one way through the modules:
//! [`rpc`] (transport and dispatch) → [`settings`] (validated once) →
//! [`request`] (HTTP body and headers) → [`engine`] (send, read, time out,
//! retry, cancel; over [`client`]'s pooled connections) → [`decode`] (bytes to
//! events) → [`extract`] (JsonPath to text) → back out as `llm/chunk`
//! notifications and a result. [`cli`] and [`demo`] are thin adapters over the
//! same engine; [`secrets`] keeps keys out of logs and errors.

pub mod cli;
pub mod client;
pub mod completion;
pub mod decode;
pub mod demo;
pub mod detect;
pub mod documents;
pub mod engine;
pub mod extract;
pub mod logging;
pub mod presets;
pub mod probe;
pub mod request;
pub mod rpc;
pub mod secrets;
pub mod settings;
