//! What the runner reports while it works, and how it is interrupted. The runner prints
//! nothing: it hands each [`Event`] to the caller's sink as it happens (a migration applied,
//! a retry, a wait for the migration lock, a server message), and stops at the next safe point
//! once its [`Interrupt`] is triggered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::db::notices::Severity;

/// A migration, as events name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationRef {
    pub version: i64,
    pub description: String,
}

/// The session holding the migration lock another runner waits for.
#[derive(Debug, Clone, Serialize)]
pub struct LockHolder {
    pub pid: i32,
    pub application_name: String,
    pub user: Option<String>,
    /// `active`, `idle`, `idle in transaction`, ...
    pub state: Option<String>,
    /// When it entered that state.
    pub since: Option<DateTime<Utc>>,
    /// Its current (or last) query; hidden by the server from roles that may not see it.
    pub query: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A migration's up committed (or, without a transaction, completed and was recorded).
    Applied {
        #[serde(flatten)]
        migration: MigrationRef,
        #[serde(serialize_with = "millis")]
        took: Duration,
    },
    /// A migration's down committed.
    Reverted {
        #[serde(flatten)]
        migration: MigrationRef,
        #[serde(serialize_with = "millis")]
        took: Duration,
    },
    /// A statement could not get its lock within the attempt's `lock_timeout`: everything the
    /// attempt did was rolled back, and the whole migration runs again after `pause`.
    Retry {
        #[serde(flatten)]
        migration: MigrationRef,
        /// The attempt that failed (1 is the first).
        attempt: u32,
        attempts: u32,
        #[serde(serialize_with = "millis")]
        pause: Duration,
        reason: String,
    },
    /// The migration lock is taken by another session; the runner keeps waiting.
    LockWait {
        holder: Option<LockHolder>,
        #[serde(serialize_with = "millis")]
        waited: Duration,
    },
    /// A NOTICE or WARNING the server sent, during a migration or pgx's own bookkeeping.
    Message {
        migration: Option<MigrationRef>,
        severity: Severity,
        text: String,
    },
    /// A schema named like a tenant's that discovery skipped because it does not trust it.
    Ignored { schema: String, owner: String },
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// A duration as people read it: `300 ms`, `12.5 s`, `5 min`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 10_000 {
        format!("{ms} ms")
    } else if ms < 600_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{:.1} min", d.as_secs_f64() / 60.0)
    }
}

/// Receives each event as it happens, with the tenant schema it concerns (`None` for the
/// database's own migrations).
pub type Sink<'a> = &'a dyn Fn(Option<&str>, &Event);

/// A sink that drops everything.
pub fn ignore(_: Option<&str>, _: &Event) {}

/// The signal that interrupted a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The shell's convention: 128 + the signal's number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// Shared by whoever catches the signal and the runners it stops.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    inner: Arc<InterruptInner>,
}

#[derive(Debug, Default)]
struct InterruptInner {
    signal: AtomicU8,
    notify: tokio::sync::Notify,
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Stops the runners: the running statement is cancelled on the server, the migration rolled
    /// back, the migration lock released. Only the first signal counts.
    pub fn trigger(&self, signal: Signal) {
        let code = match signal {
            Signal::Interrupt => 1,
            Signal::Terminate => 2,
        };
        let _ = self
            .inner
            .signal
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    pub fn signal(&self) -> Option<Signal> {
        match self.inner.signal.load(Ordering::SeqCst) {
            1 => Some(Signal::Interrupt),
            2 => Some(Signal::Terminate),
            _ => None,
        }
    }

    /// Resolves once triggered (at once if it already was).
    pub async fn triggered(&self) {
        let notified = self.inner.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.signal().is_some() {
            return;
        }
        notified.await;
    }
}
