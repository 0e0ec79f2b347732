//! Email: the outbox (rows written in the same transaction as the change that sends
//! them) and the messages themselves.

pub mod messages;
pub mod outbox;
pub mod seal;

pub use outbox::{OutgoingEmail, queue};
pub use seal::Sealer;
