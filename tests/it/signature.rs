//! Webhook signature verification: a differential test against stripe-node and
//! stripe-python over a generated corpus, and property tests that any
//! tampering is rejected.

use checkout::config::WebhookSecret;
use checkout::routes::webhook::authenticate;
use checkout::signature::{self, SignatureError};
use proptest::prelude::*;
use serde_json::json;

fn secrets(list: &[&str]) -> Vec<WebhookSecret> {
    list.iter().map(|s| WebhookSecret::parse(s).unwrap()).collect()
}

fn v1(secret: &str, t: i64, body: &[u8]) -> String {
    hex::encode(signature::compute(secret.as_bytes(), t, body))
}

/// One corpus case. `shaped` marks inputs shaped exactly as Stripe sends them
/// (rule 2 of the contract): there, if both SDKs accept, we must accept.
struct Case {
    label: String,
    body: Vec<u8>,
    header: Option<String>,
    secrets: Vec<&'static str>,
    shaped: bool,
}

fn corpus(now: i64) -> Vec<Case> {
    const S: &str = "whsec_primary_secret_1";
    const OLD: &str = "whsec_rotated_out_2";
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("event", br#"{"id":"evt_1","object":"event","type":"checkout.session.completed","livemode":false,"data":{"object":{"id":"cs_test_1"}}}"#.to_vec()),
        ("unicode", "{\"id\":\"evt_2\",\"name\":\"Caf\u{e9} \u{1f980}\"}".as_bytes().to_vec()),
        ("pretty", b"{\n  \"id\": \"evt_3\",\n  \"object\": \"event\"\n}\n".to_vec()),
        ("big", format!("{{\"id\":\"evt_4\",\"pad\":\"{}\"}}", "a".repeat(3000)).into_bytes()),
    ];
    let mut cases = Vec::new();
    let mut add = |label: String, body: &[u8], header: Option<String>, secrets: Vec<&'static str>, shaped: bool| {
        cases.push(Case { label, body: body.to_vec(), header, secrets, shaped });
    };
    for (name, body) in &bodies {
        let t = now - 5;
        let good = v1(S, t, body);
        let zeros = "0".repeat(64);
        let other = v1(OLD, t, body);
        // Rule 2: exactly as Stripe sends.
        add(format!("{name}: plain"), body, Some(format!("t={t},v1={good}")), vec![S], true);
        add(format!("{name}: v1 first"), body, Some(format!("v1={good},t={t}")), vec![S], true);
        add(format!("{name}: with v0"), body, Some(format!("t={t},v1={good},v0={zeros}")), vec![S], true);
        add(
            format!("{name}: right v1 first"),
            body,
            Some(format!("t={t},v1={good},v1={zeros},v1={other}")),
            vec![S],
            true,
        );
        add(
            format!("{name}: right v1 middle"),
            body,
            Some(format!("t={t},v1={zeros},v1={good},v1={other}")),
            vec![S],
            true,
        );
        add(
            format!("{name}: right v1 last"),
            body,
            Some(format!("t={t},v1={zeros},v1={other},v1={good}")),
            vec![S],
            true,
        );
        // Any number of v1 (issue 11: the old parser refused more than 8).
        let mut many = format!("t={t}");
        for i in 0..40 {
            many.push_str(&format!(",v1={}", v1(OLD, t + i, body)));
        }
        add(format!("{name}: 40 wrong v1 then the right one"), body, Some(format!("{many},v1={good}")), vec![S], true);
        add(
            format!("{name}: right v1 then 40 wrong"),
            body,
            Some(format!("t={t},v1={good}{}", &many[many.find(',').unwrap()..])),
            vec![S],
            true,
        );
        // Unknown schemes whatever their spelling (the old parser refused keys outside [a-z0-9]).
        for extra in ["V1=deadbeef", "v2=YWJjZA==", "x-sig=1", "Scheme_2=a", "v1beta=zz"] {
            add(
                format!("{name}: unknown scheme {extra}"),
                body,
                Some(format!("t={t},{extra},v1={good}")),
                vec![S],
                true,
            );
        }
        add(format!("{name}: only an uppercase V1"), body, Some(format!("t={t},V1={good}")), vec![S], false);
        add(format!("{name}: rotation old secret"), body, Some(format!("t={t},v1={other}")), vec![S, OLD], true);
        add(format!("{name}: rotation new secret"), body, Some(format!("t={t},v1={good}")), vec![OLD, S], true);
        add(
            format!("{name}: 290s old"),
            body,
            Some(format!("t={},v1={}", now - 290, v1(S, now - 290, body))),
            vec![S],
            true,
        );
        add(
            format!("{name}: 200s future"),
            body,
            Some(format!("t={},v1={}", now + 200, v1(S, now + 200, body))),
            vec![S],
            true,
        );
        // Rule 1: what the SDKs reject.
        add(
            format!("{name}: expired"),
            body,
            Some(format!("t={},v1={}", now - 400, v1(S, now - 400, body))),
            vec![S],
            true,
        );
        add(format!("{name}: wrong secret"), body, Some(format!("t={t},v1={other}")), vec![S], true);
        add(format!("{name}: uppercase hex"), body, Some(format!("t={t},v1={}", good.to_uppercase())), vec![S], false);
        add(format!("{name}: truncated hex"), body, Some(format!("t={t},v1={}", &good[..62])), vec![S], false);
        add(format!("{name}: only v0"), body, Some(format!("t={t},v0={good}")), vec![S], false);
        add(format!("{name}: no t"), body, Some(format!("v1={good}")), vec![S], false);
        add(format!("{name}: no header"), body, None, vec![S], false);
        add(format!("{name}: empty header"), body, Some(String::new()), vec![S], false);
        add(format!("{name}: signed other t"), body, Some(format!("t={},v1={good}", t + 1)), vec![S], true);
        let mut tampered = body.clone();
        tampered[2] ^= 1;
        add(format!("{name}: tampered body"), &tampered, Some(format!("t={t},v1={good}")), vec![S], true);
        let mut trailing = body.clone();
        trailing.push(b' ');
        add(format!("{name}: re-serialised body"), &trailing, Some(format!("t={t},v1={good}")), vec![S], true);
        // Rule 3: oddities the SDKs may tolerate; rejecting is allowed.
        add(format!("{name}: space after comma"), body, Some(format!("t={t}, v1={good}")), vec![S], false);
        add(format!("{name}: plus t"), body, Some(format!("t=+{t},v1={}", v1(S, t, body))), vec![S], false);
        add(format!("{name}: leading zero t"), body, Some(format!("t=0{t},v1={}", v1(S, t, body))), vec![S], false);
        add(format!("{name}: junk after t"), body, Some(format!("t={t}abc,v1={good}")), vec![S], false);
        add(format!("{name}: repeated t"), body, Some(format!("t={t},t={t},v1={good}")), vec![S], false);
        add(
            format!("{name}: far future"),
            body,
            Some(format!("t={},v1={}", now + 4000, v1(S, now + 4000, body))),
            vec![S],
            false,
        );
        add(format!("{name}: junk v1 beside good"), body, Some(format!("t={t},v1=zz,v1={good}")), vec![S], false);
        add(format!("{name}: trailing comma"), body, Some(format!("t={t},v1={good},")), vec![S], false);
    }
    // Bodies that are signed correctly but are not what constructEvent takes.
    let t = now - 1;
    for (label, body) in [
        ("non-utf8", b"{\"id\":\"evt_\xff\xfe\"}".to_vec()),
        ("empty", Vec::new()),
        ("not json", b"hello".to_vec()),
        ("nan json", b"{\"a\":NaN}".to_vec()),
        ("truncated json", b"{\"id\":".to_vec()),
    ] {
        add(label.into(), &body, Some(format!("t={t},v1={}", v1(S, t, &body))), vec![S], true);
    }
    cases
}

#[test]
#[cfg_attr(
    not(all(has_node_stripe, has_python_stripe)),
    ignore = "needs the oracles: cd tests/oracle && npm ci; pip install -r tests/oracle/requirements.txt"
)]
fn differential_against_stripe_node_and_stripe_python() {
    use crate::common::base64_encode as encode;
    let now = checkout::clock::now();
    let cases = corpus(now);
    let input = serde_json::to_string(
        &cases
            .iter()
            .map(|c| json!({ "body_b64": encode(&c.body), "header": c.header, "secrets": c.secrets }))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let Some(node) = crate::common::oracle("node", "verify.js", &input) else {
        return crate::common::tool_missing("node with npm stripe");
    };
    let Some(python) = crate::common::oracle("python3", "verify.py", &input) else {
        return crate::common::tool_missing("python3 with PyPI stripe");
    };
    assert_eq!(node.len(), cases.len());
    assert_eq!(python.len(), cases.len());
    let mut agreed_accept = 0;
    for (i, c) in cases.iter().enumerate() {
        let ours = authenticate(&c.body, c.header.as_deref(), &secrets(&c.secrets), now).is_ok();
        let (n, p) = (node[i], python[i]);
        if !(n && p) {
            assert!(!ours, "{}: we accept what an SDK rejects (node={n} python={p})", c.label);
        } else if c.shaped {
            assert!(ours, "{}: both SDKs accept a Stripe-shaped delivery and we reject", c.label);
            agreed_accept += 1;
        }
    }
    assert!(agreed_accept >= 40, "the corpus must exercise acceptance ({agreed_accept})");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn any_body_tampering_is_rejected(body in proptest::collection::vec(any::<u8>(), 1..512), idx in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let s = secrets(&["whsec_prop"]);
        let t = 1_700_000_000;
        let header = signature::sign(b"whsec_prop", t, &body);
        let mut tampered = body.clone();
        let i = idx.index(tampered.len());
        tampered[i] ^= flip;
        prop_assert_eq!(signature::verify(&tampered, Some(&header), &s, t), Err(SignatureError::NoMatch));
    }

    #[test]
    fn any_timestamp_change_is_rejected(delta in -250i64..250, body in "[ -~]{0,200}") {
        prop_assume!(delta != 0);
        let s = secrets(&["whsec_prop"]);
        let t = 1_700_000_000;
        let sig = hex::encode(signature::compute(b"whsec_prop", t, body.as_bytes()));
        let header = format!("t={},v1={sig}", t + delta);
        prop_assert!(signature::verify(body.as_bytes(), Some(&header), &s, t).is_err());
    }

    #[test]
    fn any_signature_change_is_rejected(body in "[ -~]{0,200}", pos in 0usize..64, digit in 0u8..16) {
        let s = secrets(&["whsec_prop"]);
        let t = 1_700_000_000;
        let mut sig = hex::encode(signature::compute(b"whsec_prop", t, body.as_bytes())).into_bytes();
        let replacement = b"0123456789abcdef"[digit as usize];
        prop_assume!(sig[pos] != replacement);
        sig[pos] = replacement;
        let header = format!("t={t},v1={}", String::from_utf8(sig).unwrap());
        prop_assert_eq!(signature::verify(body.as_bytes(), Some(&header), &s, t), Err(SignatureError::NoMatch));
    }

    #[test]
    fn untampered_always_verifies(body in "\\PC{0,300}", age in -300i64..=300) {
        let s = secrets(&["whsec_prop"]);
        let t = 1_700_000_000;
        let header = signature::sign(b"whsec_prop", t, body.as_bytes());
        prop_assert_eq!(signature::verify(body.as_bytes(), Some(&header), &s, t + age), Ok(()));
    }

    #[test]
    fn any_number_of_v1_with_the_right_one_anywhere(n in 0usize..200, pos in any::<prop::sample::Index>(), body in "[ -~]{0,100}") {
        let s = secrets(&["whsec_prop"]);
        let t = 1_700_000_000;
        let mut sigs: Vec<String> = (0..n).map(|i| hex::encode(signature::compute(b"whsec_other", t + i as i64, body.as_bytes()))).collect();
        sigs.insert(pos.index(n + 1), hex::encode(signature::compute(b"whsec_prop", t, body.as_bytes())));
        let header = format!("t={t},{}", sigs.iter().map(|v| format!("v1={v}")).collect::<Vec<_>>().join(","));
        prop_assert_eq!(signature::verify(body.as_bytes(), Some(&header), &s, t), Ok(()));
        // The same header without the right one stays rejected.
        let wrong = header.replace(&hex::encode(signature::compute(b"whsec_prop", t, body.as_bytes())), &"0".repeat(64));
        prop_assert_eq!(signature::verify(body.as_bytes(), Some(&wrong), &s, t), Err(SignatureError::NoMatch));
    }

    #[test]
    fn unknown_schemes_are_ignored(key in "[!-+\\--<>-~]{1,12}", value in "[!-+\\--~]{0,40}", before in any::<bool>()) {
        prop_assume!(key != "t" && key != "v1");
        let s = secrets(&["whsec_prop"]);
        let t = 1_700_000_000;
        let good = signature::sign(b"whsec_prop", t, b"{}");
        let header = if before { format!("{key}={value},{good}") } else { format!("{good},{key}={value}") };
        prop_assert_eq!(signature::verify(b"{}", Some(&header), &s, t), Ok(()));
    }

    #[test]
    fn malformed_t_or_v1_is_rejected(junk in "[!-+\\--~]{1,6}", which in 0usize..4) {
        let s = secrets(&["whsec_prop"]);
        let t = 1_700_000_000;
        let sig = hex::encode(signature::compute(b"whsec_prop", t, b"{}"));
        let header = match which {
            0 => format!("t={t}{junk},v1={sig}"),
            1 => format!("t={junk}{t},v1={sig}"),
            2 => format!("t={t},v1={sig}{junk}"),
            _ => format!("t={t},v1={sig},v1={junk}"),
        };
        prop_assert!(signature::verify(b"{}", Some(&header), &s, t).is_err(), "accepted {}", header);
    }

    #[test]
    fn parser_never_panics(header in "\\PC{0,200}") {
        let _ = signature::parse_header(&header);
    }
}
