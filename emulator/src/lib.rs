//! Stripe emulator
