//! Secure Stripe Checkout for Vercel's Rust runtime.
//!
//! Every `api/*.rs` function is three lines handing its request to its route,
//! `routes::<name>::handle` (the dev server and the tests reach the same code through
//! [`routes::dispatch`]). The modules stand on floors; a module uses only its own floor and
//! those below (checked by `tests/it/layers.rs`, which also refuses any circle of imports):
//!
//! 1. **Routes** — [`routes`] (one module per function: parse ⇒ decide ⇒ answer, the one
//!    route table, the behaviours' errors mapped to HTTP) and [`vercel`] (the function bridge,
//!    where a failed request is logged once).
//! 2. **Behaviours** — [`events`] (one typed event ⇒ one action), [`fulfillment`] (an order is
//!    recorded), [`after_payment`] (a refund or dispute changes it), [`hooks`] (the owner's
//!    hooks and their claimed runs), [`email`] (the shopper hears from the shop),
//!    [`reconcile`] (missed events recovered), [`owner_actions`] (refund, ship, deliver,
//!    cancel, note: once per idempotency key), [`products`] (what is on sale: the file catalog
//!    or the store's copy of the Stripe catalog), [`doctor`] (the set-up checks and the health
//!    view), pricing: [`cart`],
//!    [`discount`], [`session`]. Each returns its own error type.
//! 3. **Instance** — [`app`]: the validated config, the Stripe client, the store and the limiter.
//! 4. **The order and its store** — [`order`] (the order as the shop knows it: states, money,
//!    shipping, history, the transition rules, order numbers), [`store`] (persists `order` types, SQLite or
//!    Postgres), [`ratelimit`] (counters kept in the store) and [`refusals`] (the webhook's
//!    refusals, counted in-instance and written in bounded batches).
//! 5. **Ground** — [`stripe`] (our REST client, typed objects, the one-pass event reader, the
//!    one [`stripe::EventType`] enum), [`signature`] (pure), [`catalog`], [`config`],
//!    [`http`] (request/response plumbing, security headers), [`log`], [`clock`].

pub mod after_payment;
pub mod app;
pub mod cart;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod discount;
pub mod doctor;
pub mod email;
pub mod events;
pub mod fulfillment;
pub mod hooks;
pub mod http;
pub mod log;
pub mod order;
pub mod owner_actions;
pub mod products;
pub mod ratelimit;
pub mod reconcile;
pub mod refusals;
pub mod routes;
pub mod session;
pub mod signature;
pub mod stock;
pub mod store;
pub mod stripe;
pub mod vercel;

pub use app::App;
pub use config::Config;
pub use routes::Route;
