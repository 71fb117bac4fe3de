//! The event types the shop handles, as one enum: parsed once from an event's `type`, and the
//! one source of every list sent to Stripe (`types[]` for the reconciliation run, a webhook
//! endpoint's `enabled_events[]`).

/// Declares [`EventType`] with its wire names, once.
macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// An event type the shop acts on (every other type is acknowledged and ignored).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType {
            $($(#[$doc])* $variant,)*
        }

        impl EventType {
            /// Every handled type.
            pub const ALL: &[EventType] = &[$(EventType::$variant,)*];

            /// Stripe's name for it (`checkout.session.completed`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }

            /// The handled type named `name`, if the shop handles it.
            pub fn parse(name: &str) -> Option<EventType> {
                match name {
                    $($name => Some(EventType::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    /// Paid, or waiting for a delayed payment.
    CheckoutSessionCompleted => "checkout.session.completed",
    /// A delayed payment arrived.
    CheckoutSessionAsyncPaymentSucceeded => "checkout.session.async_payment_succeeded",
    /// A delayed payment failed: the order failed.
    CheckoutSessionAsyncPaymentFailed => "checkout.session.async_payment_failed",
    /// The session expired unpaid.
    CheckoutSessionExpired => "checkout.session.expired",
    /// A Charge was refunded (in part or whole); the object is the Charge.
    ChargeRefunded => "charge.refunded",
    /// A Refund was created.
    RefundCreated => "refund.created",
    /// A Refund changed (its status moved).
    RefundUpdated => "refund.updated",
    /// A Refund failed: its money came back to the shop.
    RefundFailed => "refund.failed",
    /// A dispute (or inquiry) was opened.
    ChargeDisputeCreated => "charge.dispute.created",
    /// A dispute changed status.
    ChargeDisputeUpdated => "charge.dispute.updated",
    /// A dispute closed with an outcome.
    ChargeDisputeClosed => "charge.dispute.closed",
    /// A dispute's funds left the balance.
    ChargeDisputeFundsWithdrawn => "charge.dispute.funds_withdrawn",
    /// A dispute's funds came back.
    ChargeDisputeFundsReinstated => "charge.dispute.funds_reinstated",
    /// A Product was created (the Stripe catalog source copies it).
    ProductCreated => "product.created",
    /// A Product changed (archived, renamed, a new default price).
    ProductUpdated => "product.updated",
    /// A Product was deleted.
    ProductDeleted => "product.deleted",
    /// A Price was created.
    PriceCreated => "price.created",
    /// A Price changed (archived, its lookup key moved).
    PriceUpdated => "price.updated",
    /// A Price was deleted.
    PriceDeleted => "price.deleted",
}

/// What a handled event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFamily {
    /// A Checkout Session: fulfilment.
    CheckoutSession,
    /// A charge, refund or dispute: the order's money.
    AfterPayment,
    /// A Product or Price: the store's copy of the catalog.
    Catalog,
}

impl EventType {
    /// Whether the event is about a Checkout Session or about the money after payment.
    pub fn family(self) -> EventFamily {
        match self {
            EventType::CheckoutSessionCompleted
            | EventType::CheckoutSessionAsyncPaymentSucceeded
            | EventType::CheckoutSessionAsyncPaymentFailed
            | EventType::CheckoutSessionExpired => EventFamily::CheckoutSession,
            EventType::ProductCreated
            | EventType::ProductUpdated
            | EventType::ProductDeleted
            | EventType::PriceCreated
            | EventType::PriceUpdated
            | EventType::PriceDeleted => EventFamily::Catalog,
            _ => EventFamily::AfterPayment,
        }
    }

    /// Whether the event's object is a Price (its product is found by retrieving it).
    pub fn object_is_price(self) -> bool {
        matches!(self, EventType::PriceCreated | EventType::PriceUpdated | EventType::PriceDeleted)
    }

    /// Whether the event's object is the Charge itself (`charge.refunded`), so its id is the
    /// charge's; the other after-payment objects name their charge in `charge`.
    pub fn object_is_charge(self) -> bool {
        self == EventType::ChargeRefunded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
        }
        assert_eq!(EventType::parse("customer.created"), None);
        assert_eq!(EventType::ALL.len(), 19);
        // Stripe takes at most 20 `types[]` in one events listing (the reconciliation run's).
        assert!(EventType::ALL.len() <= 20);
    }
}
