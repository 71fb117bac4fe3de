//! Secure Stripe Checkout for Vercel's Rust runtime.
//!
//! Every `api/*.rs` function is a thin entry point that hands its request to
//! [`routes::dispatch`]; the dev server (`dev/`) and the tests call the same
//! code. Prices come only from [`catalog`], discounts only from Stripe via
//! [`discount`], and webhooks are verified by [`signature`] before anything
//! parses them.

pub mod after_payment;
pub mod app;
pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod config;
pub mod discount;
pub mod fulfillment;
pub mod hooks;
pub mod http;
pub mod log;
pub mod ratelimit;
pub mod reconcile;
pub mod routes;
pub mod signature;
pub mod status;
pub mod store;
pub mod stripe;
pub mod vercel;
pub mod webhook;

pub use app::App;
pub use config::Config;
pub use routes::Route;
