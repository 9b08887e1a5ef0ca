//! Server NOTICE and WARNING messages. sqlx hands them to nobody but `tracing` (as events of
//! target `sqlx::postgres::notice`), so a minimal subscriber collects them.
//!
//! A future wrapped by a [`Capture`] gets the messages its own statements caused, even when
//! several connections are polled on one thread (tenant jobs): the capture's span is entered
//! exactly while that future is polled, and a message belongs to the innermost capture entered
//! when the connection read it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::instrument::Instrumented;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Instrument as _, Level, Metadata, Subscriber};

const NOTICE_TARGET: &str = "sqlx::postgres::notice";
const SPAN_TARGET: &str = "pgx::notices";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// NOTICE, INFO, LOG or DEBUG: informative.
    Notice,
    /// WARNING: something the user should read, whatever `-q` says.
    Warning,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Notice => "notice",
            Severity::Warning => "warning",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerMessage {
    pub severity: Severity,
    pub text: String,
}

/// Messages per capture (the span's id), and how many handles each span has.
#[derive(Default)]
struct Store {
    messages: HashMap<u64, Vec<ServerMessage>>,
    refs: HashMap<u64, usize>,
}

struct Collector {
    next: AtomicU64,
    store: Mutex<Store>,
}

thread_local! {
    /// The captures entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

impl Collector {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn ours(metadata: &Metadata<'_>) -> bool {
    metadata.target() == NOTICE_TARGET || metadata.target() == SPAN_TARGET
}

struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && self.0.is_empty() {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Collector {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if ours(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        ours(metadata)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.store().refs.insert(id, 1);
        Id::from_non_zero_u64(NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() != NOTICE_TARGET {
            return;
        }
        let Some(capture) = ENTERED.with(|e| e.borrow().last().copied()) else {
            return;
        };
        let mut text = Message(String::new());
        event.record(&mut text);
        let severity = if *event.metadata().level() <= Level::WARN {
            Severity::Warning
        } else {
            Severity::Notice
        };
        self.store()
            .messages
            .entry(capture)
            .or_default()
            .push(ServerMessage {
                severity,
                text: text.0,
            });
    }

    fn enter(&self, span: &Id) {
        ENTERED.with(|e| e.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        ENTERED.with(|e| {
            let mut entered = e.borrow_mut();
            if let Some(i) = entered.iter().rposition(|s| *s == span.into_u64()) {
                entered.remove(i);
            }
        });
    }

    fn clone_span(&self, id: &Id) -> Id {
        *self.store().refs.entry(id.into_u64()).or_default() += 1;
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        let mut store = self.store();
        let key = id.into_u64();
        let left = store.refs.get_mut(&key).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        if left == Some(0) {
            store.refs.remove(&key);
            store.messages.remove(&key);
            true
        } else {
            false
        }
    }
}

/// The process's collector, installed as the global tracing subscriber on first use. When
/// something else installed one first, messages are not captured (pgx itself installs none).
fn collector() -> Option<&'static Collector> {
    static COLLECTOR: OnceLock<Option<&'static Collector>> = OnceLock::new();
    *COLLECTOR.get_or_init(|| {
        let collector: &'static Collector = Box::leak(Box::new(Collector {
            next: AtomicU64::new(1),
            store: Mutex::new(Store::default()),
        }));
        tracing::subscriber::set_global_default(Forward(collector))
            .is_ok()
            .then_some(collector)
    })
}

/// The global default must own its subscriber; this one hands everything to the static.
struct Forward(&'static Collector);

impl Subscriber for Forward {
    fn register_callsite(&self, m: &'static Metadata<'static>) -> Interest {
        self.0.register_callsite(m)
    }
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        self.0.enabled(m)
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.0.max_level_hint()
    }
    fn new_span(&self, a: &Attributes<'_>) -> Id {
        self.0.new_span(a)
    }
    fn record(&self, s: &Id, r: &Record<'_>) {
        self.0.record(s, r);
    }
    fn record_follows_from(&self, s: &Id, f: &Id) {
        self.0.record_follows_from(s, f);
    }
    fn event(&self, e: &Event<'_>) {
        self.0.event(e);
    }
    fn enter(&self, s: &Id) {
        self.0.enter(s);
    }
    fn exit(&self, s: &Id) {
        self.0.exit(s);
    }
    fn clone_span(&self, s: &Id) -> Id {
        self.0.clone_span(s)
    }
    fn try_close(&self, s: Id) -> bool {
        self.0.try_close(s)
    }
}

/// Collects the server messages of the futures it wraps.
#[derive(Debug)]
pub struct Capture {
    span: tracing::Span,
}

impl Default for Capture {
    fn default() -> Self {
        Self::new()
    }
}

impl Capture {
    pub fn new() -> Capture {
        let span = if collector().is_some() {
            tracing::span!(target: SPAN_TARGET, Level::ERROR, "pgx server messages")
        } else {
            tracing::Span::none()
        };
        Capture { span }
    }

    /// `future`, with the messages its connection reads while it is polled kept for [`take`].
    ///
    /// [`take`]: Capture::take
    pub fn wrap<F: Future>(&self, future: F) -> Instrumented<F> {
        future.instrument(self.span.clone())
    }

    /// The messages captured since the last call, oldest first.
    pub fn take(&self) -> Vec<ServerMessage> {
        match (collector(), self.span.id()) {
            (Some(c), Some(id)) => c
                .store()
                .messages
                .remove(&id.into_u64())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}
