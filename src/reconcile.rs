//! The reconciliation run: no order lost when webhooks are not delivered (the route is
//! `routes::reconcile`, which Vercel Cron calls).
//!
//! A run lists the events the shop handles from Stripe (`GET /v1/events`), oldest first from a checkpoint
//! kept in the store, and hands each one to exactly the code the webhook runs
//! ([`events::act`]), so an event seen by both is acted on once. It stops starting work
//! after its time budget, saves the checkpoint as it goes, and the next run resumes there. The
//! first run on a new shop starts from a bounded window (`RECONCILE_WINDOW_SECS`).
//!
//! It reports `{"processed", "seen", "duplicates", "ignored", "finished", "checkpoint"}` and
//! logs one summary line. A Stripe or store failure stops the run at the event that failed (5xx);
//! the next run starts there again.

use crate::app::App;
use crate::events::{self, ActError, Disposition};
use crate::store::StoreError;
use crate::stripe::types::{Event, List};
use crate::stripe::{Form, StripeError};
use serde::Serialize;
use serde_json::Value;
use std::time::Instant;

/// What one run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Events acted on in this run (the webhook had not handled them).
    pub processed: u64,
    /// Events listed and looked at.
    pub seen: u64,
    /// Events handled before (by a delivery or an earlier run).
    pub duplicates: u64,
    /// Events not for this shop (other integrations, the other mode, unknown objects).
    pub ignored: u64,
    /// Whether the run reached the newest event (false: out of time; the next run resumes).
    pub finished: bool,
    /// The last event handled, where the next run starts.
    pub checkpoint: Option<String>,
}

/// One run within the configured budget, logged as one summary line.
pub async fn run_once(app: &App) -> Result<Report, ReconcileError> {
    let started = Instant::now();
    let (report, error) = match run(app, started + app.config.reconcile.budget).await {
        Ok(report) => (report, None),
        Err((report, e)) => (report, Some(e)),
    };
    let fields = [
        ("processed", report.processed.to_string()),
        ("seen", report.seen.to_string()),
        ("duplicates", report.duplicates.to_string()),
        ("ignored", report.ignored.to_string()),
        ("finished", report.finished.to_string()),
        ("elapsed_ms", started.elapsed().as_millis().to_string()),
    ];
    let mut fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reason = error.as_ref().map(ToString::to_string).unwrap_or_default();
    match error {
        Some(e) => {
            fields.push(("error", &reason));
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
    let mut walk = Walk { app, source: source(app), deadline, report: Report::default() };
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
}

impl Walk<'_> {
    async fn run(&mut self) -> Result<(), ReconcileError> {
        let checkpoint = self.app.store.checkpoint(&self.source).await?.map(|(id, _)| id);
        let cursor = match checkpoint {
            Some(id) => Some(id),
            None => self.first_cursor().await.map_err(|e| upstream(&e))?,
        };
        match cursor {
            Some(cursor) => self.forward_from(cursor).await,
            None => self.whole_window().await,
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
                Err(e) if e.is_not_found() || matches!(e, StripeError::Api { status: 400, .. }) => {
                    // The checkpoint's event is gone (Stripe lists 30 days): start over from the window.
                    crate::log::warn("reconcile checkpoint no longer listed; starting from the window", &[]);
                    return match self.first_cursor().await.map_err(|e| upstream(&e))? {
                        Some(c) if c != cursor => Box::pin(self.forward_from(c)).await,
                        _ => self.whole_window().await,
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

    /// A first run with nothing older than the window: lists the window newest first with
    /// `starting_after`, then handles it oldest first.
    async fn whole_window(&mut self) -> Result<(), ReconcileError> {
        let mut events = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = self.query(self.app.config.reconcile.page_size);
            q.push("created[gte]", window_start(self.app).to_string());
            if let Some(a) = &after {
                q.push("starting_after", a);
            }
            let page: List<Value> = self.app.stripe.get("/v1/events", &q).await.map_err(|e| upstream(&e))?;
            after = page.data.last().and_then(|e| e["id"].as_str()).map(String::from);
            let more = page.has_more && after.is_some();
            events.extend(page.data);
            if !more {
                break;
            }
        }
        for event in events.into_iter().rev() {
            if self.out_of_time() {
                return Ok(());
            }
            self.handle(event).await?;
        }
        self.report.finished = true;
        Ok(())
    }

    /// Hands one listed event to the webhook's own code, then moves the checkpoint past it.
    async fn handle(&mut self, event: Value) -> Result<String, ReconcileError> {
        let id = event["id"].as_str().unwrap_or_default().to_string();
        let created = event["created"].as_i64().unwrap_or(0);
        self.report.seen += 1;
        let disposition = match Event::from_value(&event) {
            Ok(event) => events::act(self.app, &event).await?,
            Err(_) => Disposition::Ignored,
        };
        match disposition {
            Disposition::Processed => self.report.processed += 1,
            Disposition::Duplicate => self.report.duplicates += 1,
            Disposition::Ignored => self.report.ignored += 1,
        }
        self.app.store.save_checkpoint(&self.source, &id, created).await?;
        self.report.checkpoint = Some(id.clone());
        Ok(id)
    }
}

/// Whose events a checkpoint follows: one Stripe account in one mode (a shop that moves from
/// test to live keys, or to another API base, starts afresh).
fn source(app: &App) -> String {
    let mode = match app.config.mode() {
        crate::config::Mode::Test => "test",
        crate::config::Mode::Live => "live",
    };
    format!("{mode} {}", app.config.api_base)
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
