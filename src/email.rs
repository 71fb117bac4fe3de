//! The shopper hears from the shop: transactional email through a provider's HTTP API, with the
//! shop's own `reqwest` client (no SMTP connection to open per invocation).
//!
//! [`Message`] is what is said — order confirmed, shipped, refunded, cancelled — in plain text
//! and HTML, every value escaped, the order number in the subject, nothing secret and no card
//! data. [`Provider`] is who delivers it; the first is Resend's `POST /emails` (bearer key,
//! `Idempotency-Key`), behind a small interface so another can follow. Configured by
//! `EMAIL_API_KEY`, `EMAIL_FROM`, optional `EMAIL_REPLY_TO` (see [`crate::config::EmailConfig`]);
//! unset means no email. Each message is sent once per fact by the caller's claimed run (see
//! [`crate::hooks`]); a provider failure is an error the run retries, with the same provider
//! idempotency key.

use crate::app::App;
use crate::config::EmailConfig;
use crate::order::{HookCall, Order};
/// One message to one shopper: its address, subject (with the order number), plain text and
/// HTML (every value escaped). The store's outbox keeps it as rendered, so it is one type.
pub use crate::store::OutboxMessage as Message;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// What an order's message is about, with what it needs to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact<'a> {
    /// The order was paid and recorded (off by default: Stripe's receipts may do this).
    Confirmed,
    /// The parcel left: carrier, tracking number and, when there is one, the tracking link.
    Shipped {
        /// e.g. `UPS`.
        carrier: &'a str,
        /// The carrier's tracking number.
        tracking_number: &'a str,
        /// An `https` tracking link.
        tracking_url: Option<&'a str>,
    },
    /// Money went back: this refund's amount, and whether the order is now refunded in full.
    Refunded {
        /// Minor units of the order's currency.
        amount: i64,
        /// The whole order is refunded.
        full: bool,
    },
    /// The order was cancelled (and refunded in full).
    Cancelled,
}

/// The order as a message needs it: its number, lines and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSummary<'a> {
    /// `RR-XXXX-XX`.
    pub number: &'a str,
    /// `(name, quantity)` of each line.
    pub lines: Vec<(&'a str, u32)>,
    /// What was charged, minor units.
    pub amount_total: Option<i64>,
    /// ISO currency code, lowercase as Stripe writes it.
    pub currency: &'a str,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Currencies Stripe counts in whole units (no minor unit).
const ZERO_DECIMAL: &[&str] =
    &["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"];

/// An amount in minor units as people read it: `12.50 USD`, `1200 JPY`.
pub fn format_money(amount: i64, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&currency.to_ascii_lowercase().as_str()) {
        return format!("{amount} {code}");
    }
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    format!("{sign}{}.{:02} {code}", abs / 100, abs % 100)
}

impl Message {
    /// The message about `fact` for `order`, to `to`.
    pub fn new(to: &str, shop_name: &str, order: &OrderSummary<'_>, fact: &Fact<'_>) -> Message {
        let number = order.number;
        let money = |amount: i64| format_money(amount, order.currency);
        let (subject, lead, detail): (String, String, Vec<String>) = match fact {
            Fact::Confirmed => (
                format!("Order {number} confirmed"),
                "Thank you: your payment was received and your order is recorded.".into(),
                order.amount_total.map(|t| vec![format!("Total paid: {}", money(t))]).unwrap_or_default(),
            ),
            Fact::Shipped { carrier, tracking_number, tracking_url } => (
                format!("Order {number} has shipped"),
                "Your order is on its way.".into(),
                [Some(format!("Carrier: {carrier}")), Some(format!("Tracking number: {tracking_number}"))]
                    .into_iter()
                    .flatten()
                    .chain(tracking_url.map(|u| format!("Track it: {u}")))
                    .collect(),
            ),
            Fact::Refunded { amount, full } => (
                format!("Order {number}: refund of {}", money(*amount)),
                if *full {
                    format!("We refunded your order in full: {}.", money(*amount))
                } else {
                    format!("We refunded part of your order: {}.", money(*amount))
                },
                vec!["The refund goes back to your original payment method; banks take a few days to show it.".into()],
            ),
            Fact::Cancelled => (
                format!("Order {number} cancelled"),
                "Your order was cancelled and refunded in full.".into(),
                vec!["The refund goes back to your original payment method; banks take a few days to show it.".into()],
            ),
        };
        let lines: Vec<String> = order.lines.iter().map(|(name, qty)| format!("{qty} × {name}")).collect();
        let mut text = format!("{lead}\n\nOrder {number}\n");
        for l in &lines {
            text.push_str(&format!("  {l}\n"));
        }
        text.push('\n');
        for d in &detail {
            text.push_str(d);
            text.push('\n');
        }
        text.push_str(&format!("\n— {shop_name}\n"));
        let mut html = format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\"><p>{}</p><p><strong>Order {}</strong></p><ul>",
            escape(&lead),
            escape(number)
        );
        for l in &lines {
            html.push_str(&format!("<li>{}</li>", escape(l)));
        }
        html.push_str("</ul>");
        for d in &detail {
            html.push_str(&format!("<p>{}</p>", escape(d)));
        }
        if let Fact::Shipped { tracking_url: Some(url), .. } = fact
            && url.starts_with("https://")
        {
            html.push_str(&format!("<p><a href=\"{}\">Track your parcel</a></p>", escape(url)));
        }
        html.push_str(&format!("<p>— {}</p></body></html>", escape(shop_name)));
        Message { to: to.to_string(), subject, text, html }
    }
}

/// Why a message was not accepted: the caller's run is retried later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailError {
    /// The provider could not be reached or answered 5xx/429: try again.
    Unavailable(String),
    /// The provider refused the message (4xx): a configuration or address problem (logged).
    Refused(u16, String),
}

impl fmt::Display for EmailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmailError::Unavailable(e) => write!(f, "email provider unavailable: {e}"),
            EmailError::Refused(status, e) => write!(f, "email provider refused the message ({status}): {e}"),
        }
    }
}

/// Who delivers the shop's messages.
pub trait Provider {
    /// Sends one message; `idempotency_key` makes a retry of the same fact one message.
    fn send(
        &self,
        message: &Message,
        idempotency_key: &str,
    ) -> impl std::future::Future<Output = Result<(), EmailError>> + Send;
}

/// Resend's HTTP API (`POST {base}/emails`, bearer key, `Idempotency-Key`).
pub struct Resend<'a> {
    /// The shop's email settings.
    pub config: &'a EmailConfig,
    /// The shop's pooled HTTP client.
    pub http: &'a reqwest::Client,
}

#[derive(Serialize)]
struct ResendBody<'a> {
    from: &'a str,
    to: [&'a str; 1],
    subject: &'a str,
    text: &'a str,
    html: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
}

/// How long one send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

impl Provider for Resend<'_> {
    async fn send(&self, message: &Message, idempotency_key: &str) -> Result<(), EmailError> {
        let body = ResendBody {
            from: &self.config.from,
            to: [&message.to],
            subject: &message.subject,
            text: &message.text,
            html: &message.html,
            reply_to: self.config.reply_to.as_deref(),
        };
        let response = self
            .http
            .post(format!("{}/emails", self.config.api_base))
            .bearer_auth(self.config.api_key.expose())
            .header("idempotency-key", idempotency_key)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .timeout(SEND_TIMEOUT)
            .send()
            .await
            .map_err(|e| EmailError::Unavailable(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let reason: String = text.chars().take(300).collect();
        if status == 429 || status >= 500 {
            Err(EmailError::Unavailable(reason))
        } else {
            Err(EmailError::Refused(status, reason))
        }
    }
}

/// How long a claimed send is left to its caller before another may retry it (one provider
/// call takes at most [`SEND_TIMEOUT`]).
pub const SEND_LEASE_SECS: i64 = 60;

/// The shop's name as its messages sign them: `EMAIL_FROM`'s display name, else its address.
fn shop_name(config: &EmailConfig) -> &str {
    match config.from.split_once('<') {
        Some((name, _)) if !name.trim().is_empty() => name.trim().trim_matches('"'),
        _ => config.from.trim(),
    }
}

/// The message facts a hook run's calls mean for the shopper: refunded, shipped, cancelled.
fn facts<'a>(order: &Order, calls: &'a [HookCall]) -> Vec<(&'static str, Fact<'a>)> {
    calls
        .iter()
        .filter_map(|call| match call {
            HookCall::Refunded { amount, amount_refunded } => {
                let full = order.money.amount > 0 && *amount_refunded >= order.money.amount;
                Some(("refunded", Fact::Refunded { amount: *amount, full }))
            }
            HookCall::Shipped { carrier, tracking_number, tracking_url } => {
                Some(("shipped", Fact::Shipped { carrier, tracking_number, tracking_url: tracking_url.as_deref() }))
            }
            HookCall::Cancelled => Some(("cancelled", Fact::Cancelled)),
            _ => None,
        })
        .collect()
}

/// Tells the shopper of what a hook run's calls did to their order (keyed by the run: each fact
/// is queued once and sent once, however often the run is taken over). Never fails the run: a
/// message the provider did not take stays queued, and the reconciliation run sends it.
pub async fn notify(app: &App, order: &Order, run_id: &str, calls: &[HookCall]) {
    for (i, (kind, fact)) in facts(order, calls).iter().enumerate() {
        deliver(app, order, &format!("{run_id}:{i}:{kind}"), fact).await;
    }
}

/// Tells the shopper their order is confirmed, when the shop asked for it
/// (`EMAIL_ORDER_CONFIRMATION=true`): once per order.
pub async fn confirm(app: &App, order: &Order) {
    if app.config.email.as_ref().is_some_and(|c| c.order_confirmation) {
        deliver(app, order, &format!("{}:confirmed", order.session_id), &Fact::Confirmed).await;
    }
}

/// Renders, queues (once per key) and sends one message, when email is on and the order has
/// the shopper's address.
async fn deliver(app: &App, order: &Order, key: &str, fact: &Fact<'_>) {
    let (Some(config), Some(to)) = (app.config.email.as_ref(), order.customer_email.as_deref()) else { return };
    let summary = OrderSummary {
        number: order.number.as_deref().unwrap_or("-"),
        lines: order.items.iter().map(|i| (i.name.as_str(), i.quantity)).collect(),
        amount_total: order.amount_total,
        currency: order.currency.as_deref().unwrap_or(""),
    };
    let message = Message::new(to, shop_name(config), &summary, fact);
    match app.store.queue_email(key, &order.session_id, &message).await {
        Ok(_) => drop(send_queued(app, config, key).await),
        Err(e) => crate::log::warn("shopper email not queued", &[("message", key), ("error", &e.to_string())]),
    }
}

/// Sends a queued message if no other send holds it; true when the provider took it.
async fn send_queued(app: &App, config: &EmailConfig, key: &str) -> bool {
    let message = match app.store.claim_email(key, SEND_LEASE_SECS).await {
        Ok(Some(m)) => m,
        Ok(None) => return false, // sent already, or another send holds it
        Err(e) => {
            crate::log::warn("shopper email not claimed", &[("message", key), ("error", &e.to_string())]);
            return false;
        }
    };
    let provider = Resend { config, http: app.stripe.http() };
    // The provider's idempotency key is the fact's: a retry after a lost answer is one message.
    let idempotency_key = format!("shop-email-{}", crate::http::sha256_hex(key.as_bytes()));
    match provider.send(&message, &idempotency_key).await {
        Ok(()) => {
            if let Err(e) = app.store.email_sent(key).await {
                crate::log::warn("shopper email sent, not recorded", &[("message", key), ("error", &e.to_string())]);
            }
            true
        }
        Err(e) => {
            crate::log::warn("shopper email not sent; it stays queued", &[("message", key), ("error", &e.to_string())]);
            let _ = app.store.release_email(key).await;
            false
        }
    }
}

/// Sends up to `limit` queued messages that no send holds (the reconciliation run calls this:
/// a provider outage delays a message, never loses it); how many the provider took.
pub async fn retry_pending(app: &App, limit: u32) -> usize {
    let Some(config) = app.config.email.as_ref() else { return 0 };
    let keys = match app.store.pending_emails(SEND_LEASE_SECS, limit).await {
        Ok(keys) => keys,
        Err(e) => {
            crate::log::warn("queued shopper email not listed", &[("error", &e.to_string())]);
            return 0;
        }
    };
    let mut sent = 0;
    for key in keys {
        sent += usize::from(send_queued(app, config, &key).await);
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> OrderSummary<'static> {
        OrderSummary { number: "RR-7K4P-2M", lines: vec![("Mug <b>", 2)], amount_total: Some(3050), currency: "usd" }
    }

    #[test]
    fn every_value_is_escaped_and_the_number_is_in_the_subject() {
        let fact = Fact::Shipped {
            carrier: "U\"PS<script>",
            tracking_number: "1Z&999",
            tracking_url: Some("https://track.example/?n=1Z&x=\"><script>"),
        };
        let m = Message::new("shopper@example.com", "Ferris & Co", &order(), &fact);
        assert!(m.subject.contains("RR-7K4P-2M"), "{}", m.subject);
        assert!(!m.html.contains("<script>"), "{}", m.html);
        assert!(
            m.html.contains("Mug &lt;b&gt;") && m.html.contains("1Z&amp;999") && m.html.contains("Ferris &amp; Co")
        );
        assert!(m.html.contains("href=\"https://track.example/?n=1Z&amp;x=&quot;&gt;&lt;script&gt;\""), "{}", m.html);
        assert!(m.text.contains("Tracking number: 1Z&999") && m.text.contains("2 × Mug <b>"));
    }

    #[test]
    fn a_tracking_link_that_is_not_https_is_never_a_link() {
        let fact = Fact::Shipped { carrier: "UPS", tracking_number: "1", tracking_url: Some("javascript:alert(1)") };
        let m = Message::new("s@example.com", "Shop", &order(), &fact);
        assert!(!m.html.contains("href="), "{}", m.html);
    }

    #[test]
    fn refunds_say_the_amount_and_whether_in_full() {
        let part = Message::new("s@example.com", "Shop", &order(), &Fact::Refunded { amount: 1000, full: false });
        assert!(part.subject.contains("10.00 USD") && part.text.contains("part of your order"));
        let full = Message::new("s@example.com", "Shop", &order(), &Fact::Refunded { amount: 3050, full: true });
        assert!(full.text.contains("in full: 30.50 USD"));
        assert_eq!(format_money(1200, "jpy"), "1200 JPY");
        assert_eq!(format_money(5, "eur"), "0.05 EUR");
    }
}
