//! Structured one-line logs on stderr (Vercel collects them). Never log a
//! secret: callers pass reasons and identifiers, not configuration values.

use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::OnceLock;

/// Where lines go instead of stderr, when set (see [`set_sink`]).
static SINK: OnceLock<fn(&str)> = OnceLock::new();

/// Sends every log line to `sink` instead of stderr, for the rest of the process. Tests pass
/// `|line| eprint!("{line}")`, which the test harness captures like any test output (shown
/// only for a failing test); the functions never set it.
pub fn set_sink(sink: fn(&str)) {
    let _ = SINK.set(sink);
}

/// Writes one JSON log line with a level, a message and extra fields.
pub fn emit(level: &str, message: &str, fields: &[(&str, &str)]) {
    let mut line = Map::new();
    line.insert("level".into(), json!(level));
    line.insert("msg".into(), json!(message));
    for (k, v) in fields {
        line.insert((*k).into(), Value::String((*v).to_string()));
    }
    // One buffer, one write: unbuffered stderr would cost a syscall per JSON token.
    let mut buf = Value::Object(line).to_string();
    buf.push('\n');
    match SINK.get() {
        Some(sink) => sink(&buf),
        None => {
            let _ = std::io::stderr().lock().write_all(buf.as_bytes());
        }
    }
}

/// Logs at level `info`.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    emit("info", message, fields);
}

/// Logs at level `warn`.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    emit("warn", message, fields);
}

/// Logs at level `error`.
pub fn error(message: &str, fields: &[(&str, &str)]) {
    emit("error", message, fields);
}
