//! Email: the outbox (rows written in the same transaction as the change that sends
//! them), the messages themselves, the transports and the worker that sends them.

pub mod messages;
pub mod outbox;
pub mod seal;
pub mod transport;
pub mod worker;

pub use outbox::{OutgoingEmail, queue};
pub use seal::Sealer;
pub use transport::Transport;
pub use worker::Worker;
