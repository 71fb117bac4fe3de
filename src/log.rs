//! Structured one-line logs on stderr (Vercel collects them). Never log a
//! secret: callers pass reasons and identifiers, not configuration values.
//!
//! Each line is one `write(2)`. Lines that would repeat on every request of a
//! busy instance (an event type the shop does not handle) go through
//! [`info_sampled`]: the first one in full, then at most one line per
//! [`SAMPLE_WINDOW`] that says how many it stands for.

use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often a sampled line is written at most, per key.
pub const SAMPLE_WINDOW: Duration = Duration::from_secs(60);

/// Keys tracked by [`info_sampled`]; beyond this every line is written.
const MAX_SAMPLED_KEYS: usize = 256;

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
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(b"{\"level\":");
    push_str(&mut buf, level);
    buf.extend_from_slice(b",\"msg\":");
    push_str(&mut buf, message);
    for (k, v) in fields {
        buf.push(b',');
        push_str(&mut buf, k);
        buf.push(b':');
        push_str(&mut buf, v);
    }
    buf.extend_from_slice(b"}\n");
    // One buffer, one write: unbuffered stderr would cost a syscall per JSON token.
    match SINK.get() {
        // Valid UTF-8 by construction (JSON written from `&str`s): borrowed, no copy.
        Some(sink) => sink(&String::from_utf8_lossy(&buf)),
        None => {
            let _ = std::io::stderr().lock().write_all(&buf);
        }
    }
}

/// Appends `s` as a JSON string.
fn push_str(buf: &mut Vec<u8>, s: &str) {
    let _ = s.serialize(&mut serde_json::Serializer::new(&mut *buf));
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

/// Logs at level `info` the first time `key` is seen by this instance, then at most once per
/// [`SAMPLE_WINDOW`]; a later line carries `"repeats"`, the number of calls since the last
/// written line (itself included). Costs no system call when nothing is written.
pub fn info_sampled(key: &str, message: &str, fields: &[(&str, &str)]) {
    static SAMPLER: Sampler = Sampler::new();
    match SAMPLER.tick(key, Instant::now()) {
        Tick::Skip => {}
        Tick::First => emit("info", message, fields),
        Tick::Repeats(n) => {
            let n = n.to_string();
            let mut all = fields.to_vec();
            all.push(("repeats", &n));
            emit("info", message, &all);
        }
    }
}

/// Per key: when a line was last written, and the calls since.
struct Sampler(Mutex<Option<HashMap<String, (Instant, u64)>>>);

/// What [`Sampler::tick`] decided.
#[derive(Debug, PartialEq, Eq)]
enum Tick {
    /// Write the line: first time seen.
    First,
    /// Write the line with the number of calls it stands for.
    Repeats(u64),
    /// Count only.
    Skip,
}

impl Sampler {
    const fn new() -> Sampler {
        Sampler(Mutex::new(None))
    }

    fn tick(&self, key: &str, now: Instant) -> Tick {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let seen = seen.get_or_insert_with(HashMap::new);
        match seen.get_mut(key) {
            Some((last, count)) => {
                *count += 1;
                if now.duration_since(*last) < SAMPLE_WINDOW {
                    return Tick::Skip;
                }
                *last = now;
                Tick::Repeats(std::mem::take(count))
            }
            None => {
                if seen.len() < MAX_SAMPLED_KEYS {
                    seen.insert(key.to_owned(), (now, 0));
                }
                Tick::First
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_json_escaped() {
        let mut buf = Vec::new();
        push_str(&mut buf, "a \"quoted\"\nline");
        assert_eq!(buf, br#""a \"quoted\"\nline""#);
    }

    #[test]
    fn sampled_lines_are_counted_between_windows() {
        let s = Sampler::new();
        let t0 = Instant::now();
        assert_eq!(s.tick("a", t0), Tick::First);
        assert_eq!(s.tick("a", t0 + Duration::from_secs(1)), Tick::Skip);
        assert_eq!(s.tick("b", t0 + Duration::from_secs(1)), Tick::First);
        assert_eq!(s.tick("a", t0 + Duration::from_secs(2)), Tick::Skip);
        assert_eq!(s.tick("a", t0 + SAMPLE_WINDOW), Tick::Repeats(3));
        assert_eq!(s.tick("a", t0 + SAMPLE_WINDOW), Tick::Skip);
    }

    #[test]
    fn keys_beyond_the_bound_are_always_written() {
        let s = Sampler::new();
        let t0 = Instant::now();
        for i in 0..MAX_SAMPLED_KEYS {
            assert_eq!(s.tick(&i.to_string(), t0), Tick::First);
        }
        assert_eq!(s.tick("one more", t0), Tick::First);
        assert_eq!(s.tick("one more", t0), Tick::First);
    }
}
