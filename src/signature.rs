//! Stripe webhook signatures, verified by our own constant-time code.
//!
//! `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]`; the MAC is
//! HMAC-SHA256 keyed with the whole `whsec_...` string over `"{t}.{raw body}"`.
//! The parser is strict about `t` and `v1`: it accepts exactly what Stripe
//! sends (any order, any number of `v1` within [`MAX_HEADER_LEN`], other
//! schemes ignored whatever their key spelling or value) and rejects every
//! oddity the SDKs merely tolerate (whitespace, `+`, leading zeros, junk after a
//! value, a repeated `t`, uppercase or short hex). Pure: no I/O, the clock is a
//! parameter.

use crate::config::WebhookSecret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use subtle::{Choice, ConstantTimeEq};

/// Largest accepted age of a signature, and largest clock skew into the future.
pub const TOLERANCE_SECS: i64 = 300;
/// Longest `Stripe-Signature` header considered: the only bound on the number
/// of `v1` values. Vercel forwards request headers up to 16 KiB each (32 KiB in
/// total); this is no smaller, so every header Vercel can deliver is parsed.
pub const MAX_HEADER_LEN: usize = 32 * 1024;

/// Why a delivery was not accepted. Logged, never answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No `STRIPE_WEBHOOK_SECRET` configured: fail closed.
    NoSecretConfigured,
    /// No `Stripe-Signature` header.
    MissingHeader,
    /// The header is not shaped as Stripe sends it.
    MalformedHeader(&'static str),
    /// The header carries no `v1` signature.
    NoV1Signature,
    /// `t` is more than [`TOLERANCE_SECS`] in the past.
    TimestampTooOld,
    /// `t` is more than [`TOLERANCE_SECS`] in the future.
    TimestampInFuture,
    /// No `v1` matches any configured secret.
    NoMatch,
    /// The body is not UTF-8 (Stripe sends UTF-8 JSON).
    BodyNotUtf8,
    /// The signed body is not JSON (checked by [`crate::routes::webhook::authenticate`]).
    BodyNotJson,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSecretConfigured => f.write_str("no webhook secret configured"),
            Self::MissingHeader => f.write_str("missing Stripe-Signature header"),
            Self::MalformedHeader(why) => write!(f, "malformed Stripe-Signature: {why}"),
            Self::NoV1Signature => f.write_str("no v1 signature in header"),
            Self::TimestampTooOld => f.write_str("timestamp outside the tolerance (too old)"),
            Self::TimestampInFuture => f.write_str("timestamp outside the tolerance (future)"),
            Self::NoMatch => f.write_str("no signature matches any configured secret"),
            Self::BodyNotUtf8 => f.write_str("body is not UTF-8"),
            Self::BodyNotJson => f.write_str("signed body is not JSON"),
        }
    }
}

impl std::error::Error for SignatureError {}

/// What kind of refusal a [`SignatureError`] is, as the health view counts them. Stripe always
/// sends a header, so [`RefusalClass::NoHeader`] is never Stripe (scanners, the doctor's own
/// probe); a burst of [`RefusalClass::SignatureMismatch`] with no verified event is the classic
/// wrong `STRIPE_WEBHOOK_SECRET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalClass {
    /// No `Stripe-Signature` header.
    NoHeader,
    /// The header is not shaped as Stripe sends it, or carries no `v1`.
    MalformedHeader,
    /// `t` is outside [`TOLERANCE_SECS`] (too old, or in the future).
    TimestampOutsideTolerance,
    /// No `v1` matches any configured secret.
    SignatureMismatch,
    /// Signed, but not a UTF-8 JSON body.
    MalformedBody,
    /// No `STRIPE_WEBHOOK_SECRET` configured: every delivery is refused.
    NoSecretConfigured,
}

impl RefusalClass {
    /// Every class.
    pub const ALL: [RefusalClass; 6] = [
        RefusalClass::NoHeader,
        RefusalClass::MalformedHeader,
        RefusalClass::TimestampOutsideTolerance,
        RefusalClass::SignatureMismatch,
        RefusalClass::MalformedBody,
        RefusalClass::NoSecretConfigured,
    ];

    /// The class's name as stored and shown (`signature_mismatch`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalClass::NoHeader => "no_header",
            RefusalClass::MalformedHeader => "malformed_header",
            RefusalClass::TimestampOutsideTolerance => "timestamp_outside_tolerance",
            RefusalClass::SignatureMismatch => "signature_mismatch",
            RefusalClass::MalformedBody => "malformed_body",
            RefusalClass::NoSecretConfigured => "no_secret_configured",
        }
    }
}

impl SignatureError {
    /// The refusal's class.
    pub fn class(self) -> RefusalClass {
        match self {
            Self::NoSecretConfigured => RefusalClass::NoSecretConfigured,
            Self::MissingHeader => RefusalClass::NoHeader,
            Self::MalformedHeader(_) | Self::NoV1Signature => RefusalClass::MalformedHeader,
            Self::TimestampTooOld | Self::TimestampInFuture => RefusalClass::TimestampOutsideTolerance,
            Self::NoMatch => RefusalClass::SignatureMismatch,
            Self::BodyNotUtf8 | Self::BodyNotJson => RefusalClass::MalformedBody,
        }
    }
}

/// A parsed header: the timestamp and every `v1` signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// `t`, seconds since the epoch.
    pub timestamp: i64,
    /// Each `v1`, decoded.
    pub v1: Vec<[u8; 32]>,
}

/// Parses `Stripe-Signature` strictly (see the module doc).
pub fn parse_header(header: &str) -> Result<SignatureHeader, SignatureError> {
    use SignatureError::MalformedHeader as Bad;
    if header.len() > MAX_HEADER_LEN {
        return Err(Bad("too long"));
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    if !header.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Bad("whitespace or a control character"));
    }
    for item in header.split(',') {
        let (key, value) = item.split_once('=').ok_or(Bad("item without ="))?;
        if key.is_empty() {
            return Err(Bad("empty key"));
        }
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(Bad("repeated t"));
                }
                let canonical = (1..=12).contains(&value.len())
                    && value.bytes().all(|b| b.is_ascii_digit())
                    && (value == "0" || !value.starts_with('0'));
                if !canonical {
                    return Err(Bad("t is not plain digits"));
                }
                timestamp = Some(value.parse::<i64>().map_err(|_| Bad("t overflows"))?);
            }
            "v1" => {
                if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                    return Err(Bad("v1 is not 64 lowercase hex digits"));
                }
                let mut sig = [0u8; 32];
                hex::decode_to_slice(value, &mut sig).map_err(|_| Bad("v1 is not hex"))?;
                v1.push(sig);
            }
            // Other schemes (v0, V1, future ones with any spelling or value) are
            // ignored: they can neither add nor remove trust, so no downgrade.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Bad("no t"))?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(SignatureHeader { timestamp, v1 })
}

/// HMAC-SHA256 of `"{timestamp}.{payload}"` keyed with the secret's bytes.
pub fn compute(secret: &[u8], timestamp: i64, payload: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

/// A `Stripe-Signature` header value for `payload`, as Stripe builds it.
pub fn sign(secret: &[u8], timestamp: i64, payload: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex::encode(compute(secret, timestamp, payload)))
}

/// Verifies a delivery: any `v1` under any configured secret (rotation),
/// compared in constant time, within the tolerance, over the raw bytes.
pub fn verify(payload: &[u8], header: Option<&str>, secrets: &[WebhookSecret], now: i64) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecretConfigured);
    }
    let header = parse_header(header.ok_or(SignatureError::MissingHeader)?)?;
    let age = now.saturating_sub(header.timestamp);
    if age > TOLERANCE_SECS {
        return Err(SignatureError::TimestampTooOld);
    }
    if age < -TOLERANCE_SECS {
        return Err(SignatureError::TimestampInFuture);
    }
    let mut matched = Choice::from(0);
    for secret in secrets {
        let expected = compute(secret.expose(), header.timestamp, payload);
        for candidate in &header.v1 {
            matched |= expected.ct_eq(candidate);
        }
    }
    if !bool::from(matched) {
        return Err(SignatureError::NoMatch);
    }
    if std::str::from_utf8(payload).is_err() {
        return Err(SignatureError::BodyNotUtf8);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
    const T: i64 = 1492774577;
    const V1: &str = "88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a";

    fn secrets(list: &[&str]) -> Vec<WebhookSecret> {
        list.iter().map(|s| WebhookSecret::parse(s).unwrap()).collect()
    }

    #[test]
    fn reference_vector() {
        assert_eq!(hex::encode(compute(SECRET.as_bytes(), T, BODY)), V1);
        let header = format!("t={T},v1={V1}");
        assert_eq!(verify(BODY, Some(&header), &secrets(&[SECRET]), T), Ok(()));
        assert_eq!(verify(BODY, Some(&header), &secrets(&[SECRET]), T + 300), Ok(()));
        assert_eq!(verify(BODY, Some(&header), &secrets(&[SECRET]), T + 301), Err(SignatureError::TimestampTooOld));
        assert_eq!(verify(BODY, Some(&header), &secrets(&[SECRET]), T - 300), Ok(()));
        assert_eq!(verify(BODY, Some(&header), &secrets(&[SECRET]), T - 301), Err(SignatureError::TimestampInFuture));
    }

    #[test]
    fn rotation_any_position_any_secret() {
        let wrong = "0".repeat(64);
        let all = secrets(&["whsec_old", SECRET, "whsec_new"]);
        for header in [
            format!("t={T},v1={V1},v1={wrong},v1={wrong}"),
            format!("t={T},v1={wrong},v1={V1},v1={wrong}"),
            format!("v1={wrong},v1={wrong},v1={V1},t={T}"),
            format!("t={T},v0={wrong},v1={V1}"),
        ] {
            assert_eq!(verify(BODY, Some(&header), &all, T), Ok(()), "{header}");
            assert_eq!(verify(BODY, Some(&header), &secrets(&[SECRET]), T), Ok(()));
            assert_eq!(verify(BODY, Some(&header), &secrets(&["whsec_other"]), T), Err(SignatureError::NoMatch));
        }
    }

    #[test]
    fn rejects_malformed_headers() {
        let s = secrets(&[SECRET]);
        let up = V1.to_uppercase();
        let short = &V1[..63];
        for header in [
            String::new(),
            format!("t={T}"),
            format!("v1={V1}"),
            format!("t={T}, v1={V1}"),
            format!(" t={T},v1={V1}"),
            format!("t=+{T},v1={V1}"),
            format!("t=0{T},v1={V1}"),
            format!("t={T}x,v1={V1}"),
            format!("t={T},t={T},v1={V1}"),
            format!("t={T},v1={up}"),
            format!("t={T},v1={short}"),
            format!("t={T},v1={V1}0"),
            format!("t={T},v1={V1},"),
            format!("t={T};v1={V1}"),
            format!("t={T},v1={V1},v1"),
            format!("t={T},v0={V1}"),
            format!("t={T},V1={V1}"),
            format!("t={T},v1=={V1}"),
            format!("t={T},v1={},v2={}", V1, "x".repeat(MAX_HEADER_LEN)),
            format!("t={T},v1={V1},=x"),
            format!("t=,v1={V1}"),
            format!("t={T},v1="),
        ] {
            assert!(verify(BODY, Some(&header), &s, T).is_err(), "accepted {header:?}");
        }
        assert_eq!(verify(BODY, None, &s, T), Err(SignatureError::MissingHeader));
        assert_eq!(verify(BODY, Some(&format!("t={T},v1={V1}")), &[], T), Err(SignatureError::NoSecretConfigured));
    }

    #[test]
    fn any_number_of_v1_within_the_header_limit() {
        let wrong = "0".repeat(64);
        let mut many = format!("t={T}");
        for _ in 0..200 {
            many.push_str(&format!(",v1={wrong}"));
        }
        many.push_str(&format!(",v1={V1}"));
        assert!(many.len() > 8 * 1024, "bigger than the old 4 KiB limit");
        assert_eq!(verify(BODY, Some(&many), &secrets(&[SECRET]), T), Ok(()));
        // Vercel forwards one header of up to 16 KiB: every such header is parsed.
        let mut full = format!("t={T},v1={V1}");
        while full.len() + 68 <= 16 * 1024 {
            full.push_str(&format!(",v1={wrong}"));
        }
        assert_eq!(verify(BODY, Some(&full), &secrets(&[SECRET]), T), Ok(()));
    }

    #[test]
    fn unknown_schemes_are_ignored_whatever_their_spelling() {
        for extra in ["V1=abc", "v0=zz", "v2=YWJj==", "x-scheme=1", "Sig_2=a=b", "v1beta=+-", "T=1"] {
            let header = format!("t={T},{extra},v1={V1}");
            assert_eq!(verify(BODY, Some(&header), &secrets(&[SECRET]), T), Ok(()), "{header}");
            let only = format!("t={T},{extra}");
            assert_eq!(verify(BODY, Some(&only), &secrets(&[SECRET]), T), Err(SignatureError::NoV1Signature));
        }
    }

    #[test]
    fn rejects_non_utf8_even_when_signed() {
        let body = b"{\"id\":\"evt_\xff\"}";
        let header = sign(SECRET.as_bytes(), T, body);
        assert_eq!(verify(body, Some(&header), &secrets(&[SECRET]), T), Err(SignatureError::BodyNotUtf8));
    }
}
