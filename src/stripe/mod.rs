//! Our own Stripe REST client: form encoding, auth, the pinned version,
//! idempotency keys, stripe-node's retry rules, typed errors, and the few
//! typed objects the shop reads. No SDK.

mod client;
pub mod event;
pub mod event_type;
mod form;
pub mod types;

pub use client::{Client, RetryPolicy, StripeError};
pub use event_type::{EventFamily, EventType};
pub use form::Form;

/// The API version every request pins (`Stripe-Version`), and the shapes
/// [`types`] and the emulator follow.
pub const API_VERSION: &str = "2026-10-28.endive";
