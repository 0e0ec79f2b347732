//! Access, eligibility and quota decisions.

pub mod access;
pub mod eligibility;
pub mod joining;
pub mod quota;
pub mod visibility;

pub use access::Actor;
