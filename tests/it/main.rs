//! The integration suite, as one test binary (one link of the whole crate instead of one per
//! file): each module is one concern, tested through the real boundaries — HTTP against the
//! handlers and the function binaries, the real SQLite and Postgres, the emulator over HTTP.

#[macro_use]
mod common;
mod after_payment;
mod binaries;
mod catalog;
mod checkout;
mod config;
mod discount;
mod email;
mod faults;
mod health;
mod layers;
mod money_model;
mod order_action;
mod orders;
mod pool;
mod reconcile;
mod round_trips;
mod signature;
mod slow_database;
mod status;
mod stock;
mod store;
mod stripe_spec;
mod webhook;
