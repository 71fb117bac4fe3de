//! The reconciliation run: no order lost when webhooks are not delivered (the route is
//! `routes::reconcile`, which Vercel Cron calls).
//!
//! A run lists the events the shop handles from Stripe (`GET /v1/events`), oldest first from a checkpoint
//! kept in the store, and hands each one to exactly the code the webhook runs
//! ([`events::act`]), so an event seen by both is acted on once. It stops starting work
//! after its time budget — listing counts too —, saves the checkpoint as it goes, and the next
//! run resumes there. The first run on a new shop starts from a bounded window
//! (`RECONCILE_WINDOW_SECS`): Stripe lists newest first, so it pages back through the window a
//! page at a time, saving the oldest event listed so far, until it reaches the window's oldest
//! event; then it walks forward from there. A first run out of time resumes the listing.
//!
//! An event [`events::act`] fails on counts an attempt in the store. Below [`MAX_ATTEMPTS`] the
//! run stops there (5xx) and the next run tries it again; at the bound it is recorded failed and
//! the walk goes past it. An event whose owner's hook run is held by another caller (a delivery
//! in progress) is recorded held and the walk goes past it at once. Each run first retries up to
//! [`RETRIES_PER_RUN`] recorded events (fetched again with `GET /v1/events/{id}`), clearing
//! those that now succeed; the owner sees the rest in the order list (`failed_events`).
//!
//! It reports `{"processed", "seen", "duplicates", "ignored", "failed", "retried", "finished",
//! "checkpoint"}` and logs one summary line. A listing or store failure stops the run where it
//! was (5xx); the next run starts there again.

use crate::app::App;
use crate::events::{self, ActError, Disposition};
use crate::store::{EventRef, FailureState, StoreError, Via};
use crate::stripe::types::{Event, List};
use crate::stripe::{EventFamily, EventType, Form, StripeError};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Instant;

/// Failed attempts at an event before the walk records it failed and goes past it.
pub const MAX_ATTEMPTS: i64 = 3;
/// Recorded failed or held events a run retries at most (before its walk, within its budget).
pub const RETRIES_PER_RUN: u32 = 10;

/// Queued shopper messages one run sends at most.
pub const EMAIL_RETRIES_PER_RUN: u32 = 20;

/// What one run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Queued shopper messages (left by a provider outage) sent by this run.
    pub emails_sent: u64,
    /// The stock sweep: reservations looked at and released.
    pub stock: Swept,
    /// Events acted on in this run (the webhook had not handled them).
    pub processed: u64,
    /// Events listed and looked at.
    pub seen: u64,
    /// Events handled before (by a delivery or an earlier run).
    pub duplicates: u64,
    /// Events not for this shop (other integrations, the other mode, unknown objects).
    pub ignored: u64,
    /// Events the walk went past without acting on them: recorded failed (after
    /// [`MAX_ATTEMPTS`]) or held, to be retried by later runs.
    pub failed: u64,
    /// Recorded events retried by this run that succeeded (and were cleared).
    pub retried: u64,
    /// Whether the run reached the newest event (false: out of time; the next run resumes).
    pub finished: bool,
    /// The last event handled, where the next run starts.
    pub checkpoint: Option<String>,
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Reservations looked at.
    pub looked_at: u64,
    /// Reservations released (their session is expired, or never existed).
    pub released: u64,
}

/// The stock sweep: looks at held reservations whose session expired more than
/// [`crate::stock::SWEEP_MARGIN_SECS`] ago
/// without the shop hearing of it, and asks Stripe: the session is recorded as it stands
/// ([`crate::fulfillment::fulfill`]), which releases the reservation only when Stripe says it
/// is expired (or its payment failed), and sells it when it was paid. A reservation whose
/// session was never recorded (its instance died between Stripe's answer and the store) is
/// released: any session it had is past its `expires_at`, so can no longer be paid; if one
/// was paid before, its event takes the oversold path. So is one whose session Stripe does not
/// have (404: made with another account's or mode's key, it can never be paid with this one).
/// A reservation waiting on a delayed payment is asked about too, once
/// [`crate::stock::AWAITING_SWEEP_AFTER_SECS`] old. The least recently looked-at go first, so
/// one Stripe keeps failing on never blocks the rest.
pub async fn sweep_stock(app: &App, limit: u32) -> Result<Swept, StoreError> {
    let now = crate::clock::now();
    let (held_before, awaiting_before) =
        (now - crate::stock::SWEEP_MARGIN_SECS, now - crate::stock::AWAITING_SWEEP_AFTER_SECS);
    let lapsed = app.store.lapsed_reservations(held_before, awaiting_before, limit).await?;
    let mut swept = Swept::default();
    app.store.prune_reservations(crate::clock::now() - crate::stock::KEEP_SETTLED_SECS).await?;
    // Refunds for want of stock (and their hook) left unfinished: taken over once lapsed.
    for session_id in app.store.lapsed_oversold_runs(crate::hooks::RUN_LEASE_SECS, limit).await? {
        if !crate::stock::resume(app, &session_id).await.settled() {
            crate::log::warn("oversold run not finished", &[("session_id", &session_id)]);
        }
    }
    for (id, session) in lapsed {
        swept.looked_at += 1;
        app.store.mark_swept(&id).await?;
        let released = match session {
            None => app.store.release(&id).await?,
            Some(session_id) => {
                match crate::fulfillment::fulfill(app, &session_id, crate::fulfillment::Trigger::AfterPayment).await {
                    Ok(_) => app.store.reservation(&id).await?.is_some_and(|r| r.state == "released"),
                    Err(crate::fulfillment::FulfillError::Stripe(e)) if e.is_not_found() => {
                        crate::log::warn(
                            "reservation released: Stripe has no such session for this key",
                            &[("reservation", &id), ("session_id", &session_id)],
                        );
                        app.store.release(&id).await?
                    }
                    Err(e) => {
                        crate::log::warn("reservation not swept", &[("reservation", &id), ("error", &e.to_string())]);
                        false
                    }
                }
            }
        };
        swept.released += u64::from(released);
    }
    Ok(swept)
}

/// One run within the configured budget, logged as one summary line.
pub async fn run_once(app: &App) -> Result<Report, ReconcileError> {
    let started = Instant::now();
    // The shopper's messages a provider outage left queued go first (bounded, quick).
    let emails_sent = crate::email::retry_pending(app, EMAIL_RETRIES_PER_RUN).await as u64;
    // The Stripe catalog's copy, refilled when old (events missed beyond the listing's reach).
    if let Err(e) = crate::products::refresh_if_stale(app).await {
        crate::log::warn("catalog copy not refreshed", &[("error", &e.to_string())]);
    }
    let (mut report, error) = match run(app, started + app.config.reconcile.budget).await {
        Ok(report) => (report, None),
        Err((report, e)) => (report, Some(e)),
    };
    report.emails_sent = emails_sent;
    // After the walk (its events settle most reservations first), bounded.
    match sweep_stock(app, crate::stock::SWEEP_PER_RUN).await {
        Ok(swept) => report.stock = swept,
        Err(e) => crate::log::warn("stock sweep failed", &[("error", &e.to_string())]),
    }
    // The health view's "last reconciliation run" (one row per source; a failure is logged).
    let run = crate::store::ReconcileRun {
        at: crate::clock::now(),
        processed: report.processed as i64,
        finished: report.finished,
        failed: error.is_some(),
    };
    if let Err(e) = app.store.save_reconcile_run(&app.source, &run).await {
        crate::log::warn("reconciliation run not recorded for the health view", &[("error", &e.to_string())]);
    }
    let fields = [
        ("processed", report.processed.to_string()),
        ("seen", report.seen.to_string()),
        ("duplicates", report.duplicates.to_string()),
        ("ignored", report.ignored.to_string()),
        ("failed", report.failed.to_string()),
        ("retried", report.retried.to_string()),
        ("finished", report.finished.to_string()),
        ("elapsed_ms", started.elapsed().as_millis().to_string()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match error {
        // The summary only: the error itself is logged once, by whoever answers for the run
        // (the route's edge, or the dev server's timer).
        Some(e) => {
            crate::log::warn("reconciliation run stopped by an error", &fields);
            Err(e)
        }
        None => {
            crate::log::info("reconciliation run", &fields);
            Ok(report)
        }
    }
}

/// One run until `deadline`: returns what it did, or what it did before an error.
pub async fn run(app: &App, deadline: Instant) -> Result<Report, (Report, ReconcileError)> {
    let mut walk = Walk {
        app,
        source: source(app),
        deadline,
        report: Report::default(),
        pages: 0,
        listing: false,
        retrying: HashSet::new(),
    };
    let result = walk.run().await;
    match result {
        Ok(()) => Ok(walk.report),
        Err(e) => Err((walk.report, e)),
    }
}

/// One run's walk over the event list: whose checkpoint it moves, when it stops, what it did.
struct Walk<'a> {
    app: &'a App,
    /// The checkpoint's source (see [`source`]), computed once per run.
    source: String,
    deadline: Instant,
    report: Report,
    /// `GET /v1/events` pages listed by this run's first-window listing.
    pages: u64,
    /// Whether the source may have an unfinished listing (forgotten once a checkpoint exists).
    listing: bool,
    /// Events the walk stopped at before (recorded [`FailureState::Retrying`]): cleared once handled.
    retrying: HashSet<String>,
}

impl Walk<'_> {
    async fn run(&mut self) -> Result<(), ReconcileError> {
        self.retry_recorded().await?;
        let retrying = self.app.store.failures_retrying(&self.source, RETRIES_PER_RUN).await?;
        self.retrying = retrying.into_iter().map(|f| f.event_id).collect();
        if let Some((id, _)) = self.app.store.checkpoint(&self.source).await? {
            return self.forward_from(id).await;
        }
        if let Some((oldest, window_start)) = self.app.store.listing(&self.source).await? {
            self.listing = true;
            return self.whole_window(window_start, Some(oldest)).await;
        }
        match self.first_cursor().await.map_err(|e| upstream(&e))? {
            Some(cursor) => self.forward_from(cursor).await,
            None => self.whole_window(window_start(self.app), None).await,
        }
    }

    /// Whether the budget is spent (a run always handles at least one event).
    fn out_of_time(&self) -> bool {
        self.report.seen > 0 && Instant::now() >= self.deadline
    }

    /// A list query for the types the shop handles, `limit` a page.
    fn query(&self, limit: u32) -> Form {
        let mut q = Form::new();
        for t in events::handled_event_types() {
            q.push("types[]", t);
        }
        q.push("limit", limit.to_string());
        q
    }

    /// Where a first run starts: the newest handled event older than the window (the run takes
    /// the events after it); `None` when there is none (every listed event is in the window).
    async fn first_cursor(&self) -> Result<Option<String>, StripeError> {
        let mut q = self.query(1);
        q.push("created[lt]", window_start(self.app).to_string());
        let list: List<Value> = self.app.stripe.get("/v1/events", &q).await?;
        Ok(list.data.first().and_then(|e| e["id"].as_str()).map(String::from))
    }

    /// Retries the events recorded failed or held, least recently tried first, while the budget
    /// lasts: each is fetched again and handed to [`events::act`]; one that succeeds is cleared,
    /// one that fails counts another attempt and stays recorded.
    async fn retry_recorded(&mut self) -> Result<(), ReconcileError> {
        for failure in self.app.store.failures_to_retry(&self.source, RETRIES_PER_RUN).await? {
            if Instant::now() >= self.deadline {
                return Ok(());
            }
            let ev = EventRef { id: &failure.event_id, kind: &failure.kind, via: Via::Reconcile, source: &self.source };
            let object_id = failure.object_id.as_deref().unwrap_or("");
            let fetched: Result<Value, StripeError> = if is_event_id(&failure.event_id) {
                self.app.stripe.get(&format!("/v1/events/{}", failure.event_id), &Form::new()).await
            } else {
                Err(StripeError::Decode { reason: "not an event id".into(), request_id: None })
            };
            let outcome = match &fetched {
                Ok(event) => match Event::from_value(event) {
                    Ok(event) => {
                        events::act(self.app, &event, Via::Reconcile).await.map_err(|e| (reason(&e), state(&e)))
                    }
                    Err(_) => Ok(Disposition::Ignored),
                },
                Err(e) if e.is_not_found() => Err(("event_not_found", FailureState::Failed)),
                Err(e) => Err((stripe_reason(e), FailureState::Failed)),
            };
            match outcome {
                Ok(_) => {
                    self.app.store.clear_failure(&failure.event_id).await?;
                    self.report.retried += 1;
                    crate::log::info("recorded reconcile failure retried", &[("event_id", &failure.event_id)]);
                }
                Err((why, state)) => {
                    // Past the walk already: it stays failed or held, never back to retrying.
                    let state = if state == FailureState::Held { state } else { FailureState::Failed };
                    self.app.store.record_failed_attempt(&self.source, ev, object_id, why).await?;
                    if state != failure.state {
                        self.app.store.set_failure_state(&failure.event_id, state).await?;
                    }
                    crate::log::warn(
                        "recorded reconcile failure still failing",
                        &[("event_id", &failure.event_id), ("reason", why)],
                    );
                }
            }
        }
        Ok(())
    }

    /// Walks forward from `cursor` with `ending_before`: each page holds the events just newer
    /// than the cursor, and is handled oldest first.
    async fn forward_from(&mut self, mut cursor: String) -> Result<(), ReconcileError> {
        loop {
            if self.out_of_time() {
                return Ok(());
            }
            let mut q = self.query(self.app.config.reconcile.page_size);
            q.push("ending_before", &cursor);
            let page: List<Value> = match self.app.stripe.get("/v1/events", &q).await {
                Ok(p) => p,
                Err(e) if gone(&e) => {
                    // The checkpoint's event is gone (Stripe lists 30 days): start over from the window.
                    crate::log::warn("reconcile checkpoint no longer listed; starting from the window", &[]);
                    self.app.store.clear_listing(&self.source).await?;
                    return match self.first_cursor().await.map_err(|e| upstream(&e))? {
                        Some(c) if c != cursor => Box::pin(self.forward_from(c)).await,
                        _ => Box::pin(self.whole_window(window_start(self.app), None)).await,
                    };
                }
                Err(e) => return Err(upstream(&e)),
            };
            for event in page.data.into_iter().rev() {
                if self.out_of_time() {
                    return Ok(());
                }
                cursor = self.handle(event).await?;
            }
            if !page.has_more {
                self.report.finished = true;
                return Ok(());
            }
        }
    }

    /// A first run with nothing older than the window (from `start`): lists the window newest
    /// first with `starting_after` (from `after`, the oldest event an earlier run listed), a
    /// page at a time while the budget lasts, saving the oldest event listed so far; once it
    /// reaches the window's oldest event, handles what it listed oldest first and walks forward.
    async fn whole_window(&mut self, start: i64, mut after: Option<String>) -> Result<(), ReconcileError> {
        let mut listed = Vec::new();
        loop {
            if self.pages > 0 && Instant::now() >= self.deadline {
                return Ok(());
            }
            let mut q = self.query(self.app.config.reconcile.page_size);
            q.push("created[gte]", start.to_string());
            if let Some(a) = &after {
                q.push("starting_after", a);
            }
            let page: List<Value> = match self.app.stripe.get("/v1/events", &q).await {
                Ok(p) => p,
                Err(e) => return Err(self.listing_failed(e).await),
            };
            self.pages += 1;
            let last = page.data.last().and_then(|e| e["id"].as_str()).map(String::from);
            let more = page.has_more && last.is_some();
            if let Some(last) = last {
                self.app.store.save_listing(&self.source, &last, start).await?;
                self.listing = true;
                after = Some(last);
            }
            listed.extend(page.data);
            if !more {
                break;
            }
        }
        if listed.is_empty() {
            match after {
                // The window is empty.
                None => {
                    self.report.finished = true;
                    return Ok(());
                }
                // An earlier run listed down to the window's oldest event.
                Some(oldest) => match self.app.stripe.get(&format!("/v1/events/{oldest}"), &Form::new()).await {
                    Ok(event) => listed.push(event),
                    Err(e) => return Err(self.listing_failed(e).await),
                },
            }
        }
        let mut cursor = String::new();
        for event in listed.into_iter().rev() {
            if self.out_of_time() {
                return Ok(());
            }
            cursor = self.handle(event).await?;
        }
        self.forward_from(cursor).await
    }

    /// A listing call failed: when its cursor is no longer listed, the listing starts over next
    /// run.
    async fn listing_failed(&mut self, e: StripeError) -> ReconcileError {
        if self.listing && gone(&e) {
            crate::log::warn("reconcile listing cursor no longer listed; the next run lists afresh", &[]);
            if let Err(e) = self.app.store.clear_listing(&self.source).await {
                return e.into();
            }
        }
        upstream(&e)
    }

    /// Hands one listed event to the webhook's own code, then moves the checkpoint past it —
    /// also past an event recorded failed or held (see [`Walk::failed_attempt`]).
    async fn handle(&mut self, event: Value) -> Result<String, ReconcileError> {
        let id = event["id"].as_str().unwrap_or_default().to_string();
        let created = event["created"].as_i64().unwrap_or(0);
        self.report.seen += 1;
        let disposition = match Event::from_value(&event) {
            Ok(event) => match events::act(self.app, &event, Via::Reconcile).await {
                Ok(d) => Some(d),
                Err(e) => {
                    self.failed_attempt(&event, e).await?;
                    None
                }
            },
            Err(_) => Some(Disposition::Ignored),
        };
        match disposition {
            Some(Disposition::Processed) => self.report.processed += 1,
            Some(Disposition::Duplicate) => self.report.duplicates += 1,
            Some(Disposition::Ignored) => self.report.ignored += 1,
            None => self.report.failed += 1,
        }
        if disposition.is_some() && self.retrying.remove(&id) {
            self.app.store.clear_failure(&id).await?;
        }
        self.app.store.save_checkpoint(&self.source, &id, created).await?;
        if self.listing {
            self.app.store.clear_listing(&self.source).await?;
            self.listing = false;
        }
        self.report.checkpoint = Some(id.clone());
        Ok(id)
    }

    /// Counts a failed attempt at an event: `Ok` when the walk goes past it (held, or recorded
    /// failed at the bound), the error when the run stops there (the next run tries again).
    async fn failed_attempt(&mut self, event: &Event<'_>, e: ActError) -> Result<(), ReconcileError> {
        let why = reason(&e);
        let ev = EventRef { id: &event.id, kind: &event.kind, via: Via::Reconcile, source: &self.source };
        let attempts = match self.app.store.record_failed_attempt(&self.source, ev, &object_id(event), why).await {
            Ok(n) => n,
            Err(store) => {
                crate::log::warn("reconcile failure not recorded", &[("error", &store.to_string())]);
                return Err(e.into());
            }
        };
        let state = state(&e);
        if state == FailureState::Retrying && attempts < MAX_ATTEMPTS {
            self.retrying.insert(event.id.to_string());
            return Err(e.into());
        }
        let state = if state == FailureState::Retrying { FailureState::Failed } else { state };
        self.app.store.set_failure_state(&event.id, state).await?;
        self.retrying.remove(&*event.id);
        let attempts = attempts.to_string();
        let fields =
            [("event_id", &*event.id), ("reason", why), ("attempts", attempts.as_str()), ("error", &e.to_string())];
        crate::log::warn("reconcile goes past an event it could not act on; later runs retry it", &fields);
        Ok(())
    }
}

/// The short class of why acting on an event failed, as recorded and shown to the owner
/// (never the error's text).
fn reason(e: &ActError) -> &'static str {
    match e {
        ActError::Stripe(e) => stripe_reason(e),
        ActError::Store(_) => "store",
        ActError::HookRunUnsettled(_) => "hook_run_unsettled",
    }
}

fn stripe_reason(e: &StripeError) -> &'static str {
    match e {
        StripeError::Api { status: 429, .. } => "stripe_rate_limited",
        StripeError::Api { status, .. } if *status >= 500 => "stripe_unavailable",
        StripeError::Api { .. } => "stripe_rejected",
        StripeError::Network(_) => "stripe_unavailable",
        StripeError::Decode { .. } => "stripe_unreadable",
    }
}

/// Where a failed event stands: held for a hook run another caller holds, otherwise counted
/// towards [`MAX_ATTEMPTS`].
fn state(e: &ActError) -> FailureState {
    match e {
        ActError::HookRunUnsettled(_) => FailureState::Held,
        _ => FailureState::Retrying,
    }
}

/// The Checkout Session or PaymentIntent an event is about (empty when unknown).
fn object_id(event: &Event<'_>) -> String {
    let field = match EventType::parse(&event.kind).map(EventType::family) {
        Some(EventFamily::CheckoutSession) => &event.object.id,
        _ => &event.object.payment_intent,
    };
    field.as_deref().unwrap_or_default().to_string()
}

/// Whether `id` looks like a Stripe event id (safe in a URL path).
fn is_event_id(id: &str) -> bool {
    id.len() > 4
        && id.len() <= 255
        && id.starts_with("evt_")
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether Stripe no longer lists the cursor a call named.
fn gone(e: &StripeError) -> bool {
    e.is_not_found() || matches!(e, StripeError::Api { status: 400, .. })
}

/// Whose events a checkpoint follows: one Stripe account in one mode (a shop that moves from
/// test to live keys, or to another API base, starts afresh); see [`App::source`].
pub fn source(app: &App) -> String {
    app.source.clone()
}

fn window_start(app: &App) -> i64 {
    crate::clock::now() - app.config.reconcile.window.as_secs() as i64
}

fn upstream(e: &StripeError) -> ReconcileError {
    ReconcileError::ListEvents(e.clone())
}

/// Why a run stopped before its budget: listing events failed, acting on one failed, or the
/// store could not save the checkpoint. The next run starts again where this one stopped.
#[derive(Debug)]
pub enum ReconcileError {
    /// `GET /v1/events` failed.
    ListEvents(StripeError),
    /// Acting on a listed event failed (see [`events::act`]).
    Act(ActError),
    /// The store failed.
    Store(StoreError),
}

impl std::fmt::Display for ReconcileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReconcileError::ListEvents(e) => write!(f, "reconcile: list events: {e}"),
            ReconcileError::Act(e) => write!(f, "reconcile: {e}"),
            ReconcileError::Store(e) => write!(f, "reconcile: store: {e}"),
        }
    }
}

impl From<StoreError> for ReconcileError {
    fn from(e: StoreError) -> Self {
        ReconcileError::Store(e)
    }
}

impl From<ActError> for ReconcileError {
    fn from(e: ActError) -> Self {
        ReconcileError::Act(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> ActError {
        let message = "secret text sk_test_123 from Stripe".to_string();
        let e =
            StripeError::Api { status, kind: "api_error".into(), code: None, param: None, message, request_id: None };
        ActError::Stripe(Box::new(e))
    }

    #[test]
    fn failures_are_recorded_as_short_classes_never_as_text() {
        assert_eq!(reason(&api(500)), "stripe_unavailable");
        assert_eq!(reason(&api(503)), "stripe_unavailable");
        assert_eq!(reason(&api(429)), "stripe_rate_limited");
        assert_eq!(reason(&api(401)), "stripe_rejected");
        assert_eq!(reason(&ActError::Stripe(Box::new(StripeError::Network("x".into())))), "stripe_unavailable");
        assert_eq!(reason(&ActError::Store(StoreError::new("password=hunter2"))), "store");
        let held = ActError::HookRunUnsettled(crate::hooks::Run::Held);
        assert_eq!((reason(&held), state(&held)), ("hook_run_unsettled", FailureState::Held));
        assert_eq!(state(&api(500)), FailureState::Retrying, "counted towards the bound");
    }

    #[test]
    fn only_event_ids_go_into_a_retrieval_path() {
        assert!(is_event_id("evt_1NG8Du2eZvKYlo2CUI79vXWy"));
        for bad in ["", "evt_", "cs_test_1", "evt_../../v1/charges", "evt_a?b=c", "evt_a/b"] {
            assert!(!is_event_id(bad), "{bad}");
        }
        assert!(!is_event_id(&format!("evt_{}", "a".repeat(300))));
    }
}
