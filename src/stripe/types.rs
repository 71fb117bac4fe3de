//! The few Stripe objects the shop reads, in the pinned version's shapes.
//! Unknown fields are ignored; fields we rely on are typed.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A list object (`{"object":"list","data":[...],"has_more":...}`).
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    /// The page of objects.
    pub data: Vec<T>,
    /// Whether more pages exist.
    #[serde(default)]
    pub has_more: bool,
}

/// A Checkout Session.
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    /// `cs_test_...` / `cs_live_...`.
    pub id: String,
    /// `open`, `complete` or `expired`.
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
    /// `payment`, `setup` or `subscription`.
    pub mode: Option<String>,
    /// Total after discounts, in minor units.
    pub amount_total: Option<i64>,
    /// Total before discounts.
    pub amount_subtotal: Option<i64>,
    /// Lowercase currency.
    pub currency: Option<String>,
    /// Hosted page URL (hosted mode).
    pub url: Option<String>,
    /// Client secret (embedded mode).
    pub client_secret: Option<String>,
    /// Live or test mode.
    #[serde(default)]
    pub livemode: bool,
    /// Our metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Present only when retrieved with `expand[]=line_items`.
    pub line_items: Option<List<LineItem>>,
    /// The PaymentIntent (`pi_...`) of a `mode=payment` session, once it exists.
    #[serde(default)]
    pub payment_intent: Option<String>,
    /// Discount, shipping and tax totals as Stripe computed them.
    #[serde(default)]
    pub total_details: Option<TotalDetails>,
    /// The chosen shipping rate and its cost (with `expand[]=shipping_cost.shipping_rate` the
    /// rate is the object).
    #[serde(default)]
    pub shipping_cost: Option<ShippingCost>,
    /// What the shopper entered at checkout (the shipping address and name).
    #[serde(default)]
    pub collected_information: Option<CollectedInformation>,
    /// The shopper's contact details (their email, for the shop's messages).
    #[serde(default)]
    pub customer_details: Option<CustomerDetails>,
}

/// `checkout.session.customer_details`: read for the email only.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CustomerDetails {
    /// The address the shopper gave at checkout.
    #[serde(default)]
    pub email: Option<String>,
}

/// `checkout.session.total_details`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TotalDetails {
    /// Discounts, minor units.
    #[serde(default)]
    pub amount_discount: i64,
    /// Shipping, minor units (null without shipping).
    #[serde(default)]
    pub amount_shipping: Option<i64>,
    /// Tax, minor units.
    #[serde(default)]
    pub amount_tax: i64,
}

/// `checkout.session.shipping_cost`.
#[derive(Debug, Clone, Deserialize)]
pub struct ShippingCost {
    /// Before tax.
    #[serde(default)]
    pub amount_subtotal: i64,
    /// Tax on shipping.
    #[serde(default)]
    pub amount_tax: i64,
    /// With tax.
    #[serde(default)]
    pub amount_total: i64,
    /// The rate: an id, or the object when expanded.
    #[serde(default)]
    pub shipping_rate: Option<Expandable<ShippingRate>>,
}

/// A shipping rate (`shr_...`), read for its name.
#[derive(Debug, Clone, Deserialize)]
pub struct ShippingRate {
    /// `shr_...`.
    pub id: String,
    /// Name shown at checkout.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `checkout.session.collected_information`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CollectedInformation {
    /// Where to ship, and to whom.
    #[serde(default)]
    pub shipping_details: Option<ShippingDetails>,
}

/// A name and an address (`collected_information.shipping_details`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ShippingDetails {
    /// The recipient.
    pub name: String,
    /// The address.
    pub address: Address,
}

/// A postal address as Stripe gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Address {
    /// City.
    pub city: Option<String>,
    /// Two-letter country code.
    pub country: Option<String>,
    /// Street line 1.
    pub line1: Option<String>,
    /// Street line 2.
    pub line2: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// State, county, province or region.
    pub state: Option<String>,
}

/// A line item (`object: "item"`).
#[derive(Debug, Clone, Deserialize)]
pub struct LineItem {
    /// The product name as shown at checkout.
    #[serde(default)]
    pub description: Option<String>,
    /// Quantity bought.
    pub quantity: Option<u32>,
    /// Line total after discounts (and with exclusive tax).
    #[serde(default)]
    pub amount_total: i64,
    /// Line total before discounts.
    #[serde(default)]
    pub amount_subtotal: i64,
    /// Discount on this line.
    #[serde(default)]
    pub amount_discount: i64,
    /// Tax on this line.
    #[serde(default)]
    pub amount_tax: i64,
}

/// A promotion code, with its coupon expanded (`expand[]=data.promotion.coupon`).
#[derive(Debug, Clone, Deserialize)]
pub struct PromotionCode {
    /// `promo_...`.
    pub id: String,
    /// The customer-facing code.
    pub code: String,
    /// Whether the code can currently be redeemed.
    pub active: bool,
    /// Unix time after which the code no longer applies.
    pub expires_at: Option<i64>,
    /// Redemption cap.
    pub max_redemptions: Option<i64>,
    /// Redemptions so far.
    #[serde(default)]
    pub times_redeemed: i64,
    /// Set when the code is limited to one customer.
    pub customer: Option<Value>,
    /// Set when the code is limited to one customer account.
    #[serde(default)]
    pub customer_account: Option<Value>,
    /// Spending restrictions.
    #[serde(default)]
    pub restrictions: Restrictions,
    /// What the code grants (from `2025-09-30.clover`: `promotion.coupon`).
    pub promotion: Promotion,
}

/// `promotion_code.restrictions`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Restrictions {
    /// Only for a customer's first purchase.
    #[serde(default)]
    pub first_time_transaction: bool,
    /// Minimum cart amount.
    pub minimum_amount: Option<i64>,
    /// Currency of the minimum.
    pub minimum_amount_currency: Option<String>,
    /// Per-currency options (we cannot check them ⇒ the code does not apply).
    #[serde(default)]
    pub currency_options: Option<Value>,
}

/// `promotion_code.promotion`.
#[derive(Debug, Clone, Deserialize)]
pub struct Promotion {
    /// `coupon`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The coupon: an id when not expanded, the object when expanded.
    pub coupon: Option<Expandable<Coupon>>,
}

/// An id or, when expanded, the object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    /// Expanded object.
    Object(Box<T>),
    /// Bare id.
    Id(String),
}

/// A coupon.
#[derive(Debug, Clone, Deserialize)]
pub struct Coupon {
    /// Coupon id.
    pub id: String,
    /// Whether it can still be redeemed.
    #[serde(default)]
    pub valid: bool,
    /// Percentage off (0–100), or
    pub percent_off: Option<f64>,
    /// a fixed amount off in `currency`.
    pub amount_off: Option<i64>,
    /// Currency of `amount_off`.
    pub currency: Option<String>,
    /// Unix time after which it cannot be redeemed.
    pub redeem_by: Option<i64>,
    /// Redemption cap.
    pub max_redemptions: Option<i64>,
    /// Redemptions so far.
    #[serde(default)]
    pub times_redeemed: i64,
    /// Product restrictions (includable: present only with `expand[]=...applies_to`;
    /// we cannot check them per line ⇒ not applied).
    pub applies_to: Option<Value>,
    /// Per-currency amounts (not checked ⇒ only the base currency applies).
    #[serde(default)]
    pub currency_options: Option<Value>,
}

pub use super::event::{Event, EventObject};

/// A Charge: what was captured, refunded, and whether it was disputed.
#[derive(Debug, Clone, Deserialize)]
pub struct Charge {
    /// `ch_...` / `py_...`.
    pub id: String,
    /// Amount charged, minor units.
    pub amount: i64,
    /// Amount refunded so far (refunds that failed are taken back out).
    #[serde(default)]
    pub amount_refunded: i64,
    /// Whether the charge was ever disputed.
    #[serde(default)]
    pub disputed: bool,
    /// The PaymentIntent it belongs to.
    pub payment_intent: Option<String>,
    /// Live or test mode.
    #[serde(default)]
    pub livemode: bool,
}

/// A Dispute (or an inquiry, whose statuses start with `warning_`).
#[derive(Debug, Clone, Deserialize)]
pub struct Dispute {
    /// `du_...` / `dp_...`.
    pub id: String,
    /// Disputed amount, minor units.
    pub amount: i64,
    /// `warning_needs_response`, `warning_under_review`, `warning_closed`, `needs_response`,
    /// `under_review`, `won`, `lost` or `prevented`.
    pub status: String,
    /// Unix time it was opened.
    pub created: i64,
}

/// A Refund of a charge, as listed (`GET /v1/refunds?charge=`).
#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    /// `re_...`.
    pub id: String,
    /// Amount refunded, minor units.
    pub amount: i64,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: Option<String>,
    /// `duplicate`, `fraudulent`, `requested_by_customer`, `expired_uncaptured_charge`, ...
    pub reason: Option<String>,
    /// Unix time it was created.
    #[serde(default)]
    pub created: i64,
}

/// A PaymentIntent, read only for its latest charge.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    /// `pi_...`.
    pub id: String,
    /// The charge that captured the money, if any (an id: not expanded).
    pub latest_charge: Option<String>,
}

/// A Product (`prod_...` or an id the account chose), as listed and retrieved.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Product {
    /// The product's id.
    pub id: String,
    /// `false` once archived.
    pub active: bool,
    /// Shown to shoppers.
    pub name: String,
    /// Shown to shoppers; may be unset.
    #[serde(default)]
    pub description: Option<String>,
    /// Image URLs (up to 8).
    #[serde(default)]
    pub images: Vec<String>,
    /// The owner's key-value pairs (the shop's tag and attributes live here).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The Stripe Tax code (`txcd_...`), an id or, expanded, the object.
    #[serde(default)]
    pub tax_code: Option<Value>,
    /// The default Price: its id, or the Price itself with `expand[]=default_price`.
    #[serde(default)]
    pub default_price: Option<Expandable<Price>>,
    /// Unix seconds of creation.
    #[serde(default)]
    pub created: i64,
    /// Unix seconds of the last change.
    #[serde(default)]
    pub updated: i64,
    /// Live or test mode.
    #[serde(default)]
    pub livemode: bool,
}

/// A Price (`price_...`); its amount never changes (a new price replaces it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Price {
    /// `price_...`.
    pub id: String,
    /// `false` once archived.
    pub active: bool,
    /// Lowercase currency.
    pub currency: String,
    /// Minor units per unit; unset for tiered or customer-chosen prices.
    #[serde(default)]
    pub unit_amount: Option<i64>,
    /// `one_time` or `recurring`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The product's id.
    pub product: String,
    /// The owner's name for it (`shop:<product id>` for prices the push command made).
    #[serde(default)]
    pub lookup_key: Option<String>,
    /// `exclusive`, `inclusive` or `unspecified`.
    #[serde(default)]
    pub tax_behavior: Option<String>,
}

impl<T> Expandable<T> {
    /// The object, when expanded.
    pub fn into_object(self) -> Option<T> {
        match self {
            Expandable::Object(o) => Some(*o),
            Expandable::Id(_) => None,
        }
    }
}

impl Expandable<Price> {
    /// The id, expanded or not.
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(p) => &p.id,
        }
    }
}
