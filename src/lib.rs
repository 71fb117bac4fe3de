//! Secure Stripe Checkout for Vercel's Rust runtime.
//!
//! Every `api/*.rs` function is three lines handing its request to its route,
//! `routes::<name>::handle` (the dev server and the tests reach the same code through
//! [`routes::dispatch`]). Where things happen, by file name:
//!
//! - a price is decided: [`catalog`] (the only prices, shipping rates and tax codes included)
//!   and [`cart`]; a discount: [`discount`]; the session sent to Stripe: [`session`];
//! - a signature is checked: [`signature`], called by [`routes::webhook`] on the raw bytes;
//! - an event becomes one action: [`events`]; an order is recorded: [`fulfillment`] and
//!   [`store`]; a refund or dispute changes it: [`after_payment`]; the owner's hooks run:
//!   [`hooks`]; missed events are recovered: [`reconcile`]; the owner reads the orders:
//!   [`routes::orders`];
//! - plumbing: [`http`], [`config`], [`app`], [`ratelimit`], [`stripe`] (our REST client),
//!   [`log`], [`clock`], [`vercel`].

pub mod after_payment;
pub mod app;
pub mod cart;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod discount;
pub mod events;
pub mod fulfillment;
pub mod hooks;
pub mod http;
pub mod log;
pub mod order;
pub mod ratelimit;
pub mod reconcile;
pub mod routes;
pub mod session;
pub mod signature;
pub mod store;
pub mod stripe;
pub mod vercel;

pub use app::App;
pub use config::Config;
pub use routes::Route;
