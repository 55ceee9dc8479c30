//! The handlers, one module per resource. Each maps its wire types to a core call and back.

pub mod admin;
pub mod events;
pub mod ops;
pub mod orders;
pub mod payments;
pub mod tickets;
