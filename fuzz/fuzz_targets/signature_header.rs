//! Fuzzes the `Stripe-Signature` parser and `verify` (pure: fixed secrets, fixed clock).
//!
//! Input: byte 0 selects a mode, the rest is `header \n body`.
//! - mode even: the header text is used as is (forgeries, garbage, odd shapes);
//! - mode odd: a VALID `t=..,v1=..` for the body is spliced into the header
//!   text at the first `|` (so the accept path and its neighbours are reached);
//!   the timestamp is NOW plus a signed 16-bit offset from the input, so both
//!   sides of the 300 s tolerance are exercised.
//!
//! Invariants: nothing panics; `parse_header` only accepts what the module doc
//! says; `verify` == Ok implies the header has a `t` within 300 s of now and a
//! `v1` equal to HMAC(secret, "{t}.{body}") for a configured secret, and the
//! body is UTF-8; a plain, correctly signed, in-tolerance header is accepted.
#![no_main]

use checkout::config::WebhookSecret;
use checkout::signature::{self, MAX_HEADER_LEN, TOLERANCE_SECS};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_700_000_000;
const SECRET: &str = "whsec_fuzz";
const OTHER: &str = "whsec_fuzz_rotated";

fn check_parse(s: &str) {
    if let Ok(h) = signature::parse_header(s) {
        assert!(s.len() <= MAX_HEADER_LEN, "accepted an over-long header");
        assert!(!h.v1.is_empty(), "accepted a header without v1");
        assert!(h.timestamp >= 0 && h.timestamp <= 999_999_999_999, "t out of range: {}", h.timestamp);
        let items: Vec<&str> = s.split(',').collect();
        assert_eq!(items.iter().filter(|i| i.starts_with("t=")).count(), 1, "not exactly one t: {s:?}");
        assert!(items.contains(&format!("t={}", h.timestamp).as_str()), "t not canonical: {s:?}");
        for sig in &h.v1 {
            assert!(items.contains(&format!("v1={}", hex(sig)).as_str()), "v1 not in header: {s:?}");
        }
        assert!(!s.bytes().any(|b| b.is_ascii_whitespace()), "accepted whitespace: {s:?}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if let Ok(s) = std::str::from_utf8(rest) {
        check_parse(s);
    }

    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let (head, body) = (&rest[..split], rest.get(split + 1..).unwrap_or(&[]));
    let head = String::from_utf8_lossy(head).into_owned();

    let mut secrets = vec![WebhookSecret::parse(SECRET).unwrap()];
    if mode & 0x80 != 0 {
        secrets.insert(0, WebhookSecret::parse(OTHER).unwrap()); // rotation
    }

    let (header, expect_ok) = if mode & 1 == 1 {
        // A valid signature (under SECRET) for this body, spliced into the fuzzed text.
        let off = i64::from(i16::from_le_bytes([mode, body.first().copied().unwrap_or(0)])) >> 4;
        let t = NOW + off;
        let valid = signature::sign(SECRET.as_bytes(), t, body);
        let (a, b) = head.split_once('|').unwrap_or((head.as_str(), ""));
        let plain = a.is_empty() && b.is_empty();
        let expect = plain && off.abs() <= TOLERANCE_SECS && std::str::from_utf8(body).is_ok();
        (format!("{a}{valid}{b}"), expect)
    } else {
        (head, false)
    };
    check_parse(&header);

    let header_opt = if mode & 0x40 != 0 { None } else { Some(header.as_str()) };
    let expect_ok = expect_ok && header_opt.is_some();
    let result = signature::verify(body, header_opt, &secrets, NOW);
    if expect_ok {
        assert_eq!(result, Ok(()), "a plain valid header was refused: {header:?}");
    }
    if result.is_ok() {
        let header = header_opt.expect("Ok without a header");
        let h = signature::parse_header(header).expect("Ok with an unparsable header");
        assert!((NOW - h.timestamp).abs() <= TOLERANCE_SECS, "Ok outside the tolerance: t={}", h.timestamp);
        assert!(std::str::from_utf8(body).is_ok(), "Ok with a non-UTF-8 body");
        let items: Vec<&str> = header.split(',').collect();
        let matched = secrets.iter().any(|s| {
            let want = format!("v1={}", hex(&signature::compute(s.expose(), h.timestamp, body)));
            items.contains(&want.as_str())
        });
        assert!(matched, "Ok without a matching v1: {header:?}");
    }
});
