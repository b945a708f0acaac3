//! JSON-RPC 2.0 over stdio: framing ([`frame`]), messages ([`message`]), the
//! server loop with its single ordered writer and cancellation ([`server`]),
//! the queue in front of that writer and its back-pressure rule ([`outbox`]),
//! and the methods ([`methods`]).
//!
//! Hand-written on purpose: the ready-made LSP frameworks write notifications
//! and responses through separate queues (a response can overtake its last
//! chunk), answer `$/cancelRequest` themselves without the partial text, cap
//! concurrent handlers, and log whole frames, secrets included.

pub mod frame;
pub mod message;
pub mod methods;
pub mod outbox;
pub mod server;
mod stdout;

pub use server::{Exit, serve};

pub use stdout::stdout;
