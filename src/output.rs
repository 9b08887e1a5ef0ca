//! Printing, in one place: data to stdout (tables or JSON), notes about what pgx is doing to
//! stderr, and the one place that knows what `-q` and `--json` mean for a run's progress.
//! Only `commands` uses it; the library layers print nothing.

use std::cell::RefCell;
use std::io::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::migrate::progress::{Event, LockHolder, Severity, human};

/// Writes `text` to stdout as is.
pub fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::io("write to", "stdout", e))
}

/// Writes `value` to stdout as pretty-printed JSON.
pub fn json(value: &impl Serialize) -> Result<()> {
    let value = serde_json::to_value(value).map_err(|e| Error::Render {
        message: format!("cannot print JSON: {e}"),
    })?;
    out(&format!("{value:#}\n"))
}

/// One line on stderr about what pgx did or is doing, prefixed `pgx: `.
pub fn note(text: &str) {
    eprintln!("pgx: {text}");
}

/// Left-aligned columns, the last one unpadded.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

/// How a run that changes the database (`migrate up|down|redo`, `tenant add`) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A line on stderr per migration as it completes, per retry, wait and server message,
    /// and a summary at the end.
    Normal,
    /// `-q`: only server warnings (and the error, if any).
    Quiet,
    /// `--json`: the same as one JSON document on stdout at the end; warnings still on stderr.
    Json,
}

impl Mode {
    pub fn of(quiet: bool, json: bool) -> Mode {
        match (quiet, json) {
            (_, true) => Mode::Json,
            (true, false) => Mode::Quiet,
            (false, false) => Mode::Normal,
        }
    }
}

/// What a run did, as it happens: the sink the runner reports to ([`Progress::event`]), and
/// the summary or JSON document at the end ([`Progress::finish`]).
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    start: Instant,
    events: RefCell<Vec<Value>>,
    counts: RefCell<Counts>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    applied: usize,
    reverted: usize,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            start: Instant::now(),
            events: RefCell::new(Vec::new()),
            counts: RefCell::new(Counts::default()),
        }
    }

    /// Receives each event of a run (the runner's sink); `schema` is the tenant schema.
    pub fn event(&self, schema: Option<&str>, event: &Event) {
        {
            let mut counts = self.counts.borrow_mut();
            match event {
                Event::Applied { .. } => counts.applied += 1,
                Event::Reverted { .. } => counts.reverted += 1,
                _ => {}
            }
        }
        let warning = match event {
            Event::Message { severity, .. } => *severity == Severity::Warning,
            Event::Ignored { .. } => true,
            _ => false,
        };
        if self.mode == Mode::Json {
            let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
            if let (Some(schema), Value::Object(map)) = (schema, &mut value) {
                map.insert("schema".into(), json!(schema));
            }
            self.events.borrow_mut().push(value);
        }
        if self.mode == Mode::Normal || warning {
            let prefix = schema.map(|s| format!("{s}: ")).unwrap_or_default();
            eprintln!("{prefix}{}", crate::error::one_line(&line(event)));
        }
    }

    /// Ends the run: the summary line (`verb` is `apply`, `revert` or `redo`), or the JSON
    /// document, which also says how the run ended when `error` is given.
    pub fn finish(&self, verb: &str, error: Option<&Error>) -> Result<()> {
        let counts = *self.counts.borrow();
        let elapsed = self.start.elapsed();
        match self.mode {
            Mode::Quiet => Ok(()),
            Mode::Normal if error.is_some() => Ok(()),
            Mode::Normal => {
                eprintln!("{}", summary(verb, counts, elapsed));
                Ok(())
            }
            Mode::Json => {
                let events = self.events.take();
                let of = |kind: &str| -> Vec<Value> {
                    events
                        .iter()
                        .filter(|e| e["event"] == kind)
                        .cloned()
                        .collect()
                };
                json(&json!({
                    "ok": error.is_none(),
                    "command": verb,
                    "applied": of("applied"),
                    "reverted": of("reverted"),
                    "events": events,
                    "elapsed_ms": millis(elapsed),
                    "error": error.map(|e| crate::error::one_line(&e.to_string())),
                }))
            }
        }
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn summary(verb: &str, counts: Counts, elapsed: Duration) -> String {
    let took = human(elapsed);
    match (verb, counts.applied, counts.reverted) {
        ("apply", 0, _) => "nothing to apply: up to date".into(),
        ("apply", n, _) => format!("applied {} in {took}", plural(n, "migration")),
        ("revert", _, 0) => "nothing to revert".into(),
        ("revert", _, n) => format!("reverted {} in {took}", plural(n, "migration")),
        (_, a, r) => format!("redone: reverted {r} and applied {a} in {took}"),
    }
}

/// One event as a line of text (without the tenant schema).
fn line(event: &Event) -> String {
    match event {
        Event::Applied { migration, took } => format!(
            "applied {} {} ({})",
            migration.version,
            migration.description,
            human(*took)
        ),
        Event::Reverted { migration, took } => format!(
            "reverted {} {} ({})",
            migration.version,
            migration.description,
            human(*took)
        ),
        Event::Retry {
            migration,
            attempt,
            attempts,
            pause,
            reason,
        } => format!(
            "retrying {} {} in {} (attempt {} of {} could not get a lock in time, rolled back): {reason}",
            migration.version,
            migration.description,
            human(*pause),
            attempt,
            attempts
        ),
        Event::LockWait { holder, waited } => format!(
            "waiting for the migration lock ({} so far): {}",
            human(*waited),
            holder.as_ref().map_or_else(
                || "its holder has just released it".to_string(),
                describe_holder
            )
        ),
        Event::Message {
            migration,
            severity,
            text,
        } => match migration {
            Some(m) => format!(
                "{} {}: {}: {text}",
                m.version,
                m.description,
                severity.label()
            ),
            None => format!("server {}: {text}", severity.label()),
        },
        Event::Ignored { schema, owner } => format!(
            "warning: ignoring schema {schema:?}: it is owned by role {owner:?}, not by you, a superuser or a role listed under trusted_roles in pgx.yaml"
        ),
    }
}

fn describe_holder(h: &LockHolder) -> String {
    let mut text = format!("held by pid {}", h.pid);
    if !h.application_name.is_empty() {
        text.push_str(&format!(" ({})", h.application_name));
    }
    if let Some(user) = &h.user {
        text.push_str(&format!(", user {user:?}"));
    }
    if let Some(state) = &h.state {
        text.push_str(&format!(", {state}"));
        if let Some(since) = h.since {
            let ago = (chrono::Utc::now() - since).to_std().unwrap_or_default();
            text.push_str(&format!(
                " since {} ({} ago)",
                since.format("%H:%M:%S UTC"),
                human(ago)
            ));
        }
    }
    if let Some(query) = h.query.as_deref().filter(|q| !q.is_empty()) {
        const SHOWN: usize = 200;
        let short: String = query.chars().take(SHOWN).collect();
        let more = if query.chars().count() > SHOWN {
            "…"
        } else {
            ""
        };
        text.push_str(&format!(", query: {short}{more}"));
    }
    text
}
