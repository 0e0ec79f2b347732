//! Email: the outbox (rows written in the same transaction as the change that sends
//! them), the messages themselves and the transports. `jobs::outbox` sends them.

pub mod messages;
pub mod outbox;
pub mod seal;
pub mod transport;

pub use outbox::{OutgoingEmail, queue, queue_many};
pub use seal::Sealer;
pub use transport::Transport;
