//! Configuration table: every refusal and every accepted form.

use checkout::config::{Config, Mode, UiMode};
use std::collections::HashMap;

const SK: &str = "sk_test_51abcDEF";
const PK: &str = "pk_test_51abcDEF";

fn load(pairs: &[(&str, &str)]) -> Result<Config, String> {
    let mut env: HashMap<String, String> = HashMap::from([("STRIPE_SECRET_KEY".to_string(), SK.to_string())]);
    for (k, v) in pairs {
        if v.is_empty() {
            env.remove(*k);
        } else {
            env.insert(k.to_string(), v.to_string());
        }
    }
    Config::from_lookup(|k| env.get(k).cloned()).map_err(|e| e.0)
}

#[test]
fn refusals_name_the_variable_and_never_the_value() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("STRIPE_SECRET_KEY", "")], "STRIPE_SECRET_KEY: not set"),
        (&[("STRIPE_SECRET_KEY", "pk_test_51abcDEF")], "STRIPE_SECRET_KEY: must start with sk_ or rk_"),
        (&[("STRIPE_SECRET_KEY", "whsec_51abcDEF")], "STRIPE_SECRET_KEY: must start with"),
        (&[("STRIPE_SECRET_KEY", "sk_51abcDEF")], "test_ or live_"),
        (&[("STRIPE_SECRET_KEY", "sk_test_")], "malformed"),
        (&[("STRIPE_SECRET_KEY", "sk_test_51abc\n")], "leading or trailing whitespace"),
        (&[("STRIPE_SECRET_KEY", " sk_test_51abc")], "leading or trailing whitespace"),
        (&[("STRIPE_SECRET_KEY", "sk_test_51a bc")], "contains whitespace"),
        (&[("STRIPE_SECRET_KEY", "sk_test_51a\nbc")], "contains whitespace"),
        (&[("STRIPE_SECRET_KEY", "sk_live_fake_config_key")], "only allowed when VERCEL_ENV=production"),
        (
            &[("STRIPE_SECRET_KEY", "sk_live_fake_config_key"), ("VERCEL_ENV", "preview")],
            "only allowed when VERCEL_ENV=production",
        ),
        (&[("STRIPE_PUBLISHABLE_KEY", "sk_test_51abcDEF")], "STRIPE_PUBLISHABLE_KEY: must start with pk_"),
        (&[("STRIPE_PUBLISHABLE_KEY", "pk_live_51abcDEF")], "mixed"),
        (
            &[
                ("STRIPE_SECRET_KEY", "sk_live_fake_config_key"),
                ("VERCEL_ENV", "production"),
                ("STRIPE_PUBLISHABLE_KEY", PK),
            ],
            "mixed",
        ),
        (&[("STRIPE_PUBLISHABLE_KEY", "pk_test_51abc\r\n")], "STRIPE_PUBLISHABLE_KEY: leading or trailing whitespace"),
        (&[("STRIPE_WEBHOOK_SECRET", "sk_test_51abcDEF")], "STRIPE_WEBHOOK_SECRET: each secret must start with whsec_"),
        (&[("STRIPE_WEBHOOK_SECRET", "whsec_abc\n")], "STRIPE_WEBHOOK_SECRET: leading or trailing whitespace"),
        (&[("STRIPE_WEBHOOK_SECRET", "whsec_a, whsec_b")], "STRIPE_WEBHOOK_SECRET: leading or trailing whitespace"),
        (&[("STRIPE_WEBHOOK_SECRET", "whsec_a,,whsec_b")], "STRIPE_WEBHOOK_SECRET: each secret must start with whsec_"),
        (&[("STRIPE_WEBHOOK_SECRET", "whsec_")], "STRIPE_WEBHOOK_SECRET: each secret must start with whsec_"),
        (&[("STRIPE_API_BASE", "http://api.stripe.com")], "plain http is only allowed for loopback"),
        (&[("STRIPE_API_BASE", "http://10.0.0.5:12111")], "plain http is only allowed for loopback"),
        (&[("STRIPE_API_BASE", "ftp://127.0.0.1")], "must be an http(s) URL"),
        (&[("STRIPE_API_BASE", "api.stripe.com")], "not an absolute URL"),
        (&[("STRIPE_API_BASE", "https://user:pw@api.stripe.com")], "credentials"),
        (
            &[
                ("STRIPE_SECRET_KEY", "sk_live_fake_config_key"),
                ("VERCEL_ENV", "production"),
                ("STRIPE_API_BASE", "https://evil.example"),
            ],
            "live keys are only sent",
        ),
        (&[("SITE_URL", "http://shop.example")], "SITE_URL: plain http"),
        (&[("SITE_URL", "https://shop.example/shop")], "SITE_URL: must be an origin"),
        (&[("SITE_URL", "https://shop.example?x=1")], "SITE_URL: must not have a query"),
        (&[("VERCEL", "1"), ("DATABASE_URL", "postgres://db/x")], "SITE_URL: required on Vercel"),
        (&[("VERCEL", "1"), ("SITE_URL", "https://shop.example")], "DATABASE_URL: required on Vercel"),
        (
            &[("VERCEL", "1"), ("SITE_URL", "https://shop.example"), ("DATABASE_URL", "sqlite://x.db")],
            "DATABASE_URL: SQLite files do not survive",
        ),
        (&[("DATABASE_URL", "mysql://db/x")], "DATABASE_URL: must start with"),
        (&[("DATABASE_URL", "sqlite://")], "DATABASE_URL: must start with"),
        (&[("CHECKOUT_UI_MODE", "embedded")], "CHECKOUT_UI_MODE"),
        (&[("STRIPE_MAX_RETRIES", "9")], "STRIPE_MAX_RETRIES"),
        (&[("DISCOUNT_RESPONSE_FLOOR_MS", "-1")], "DISCOUNT_RESPONSE_FLOOR_MS"),
        (&[("RATE_LIMIT_APPLY_DISCOUNT", "10")], "RATE_LIMIT_APPLY_DISCOUNT"),
        (&[("RATE_LIMIT_CREATE_CHECKOUT", "0/60")], "RATE_LIMIT_CREATE_CHECKOUT"),
        (&[("RATE_LIMIT_ORDERS", "x/60")], "RATE_LIMIT_ORDERS"),
        (&[("STRIPE_AUTOMATIC_TAX", "yes")], "STRIPE_AUTOMATIC_TAX: must be true, false or unset"),
        (&[("SHIPPING_ALLOWED_COUNTRIES", "US,XX")], "SHIPPING_ALLOWED_COUNTRIES"),
        (&[("SHIPPING_ALLOWED_COUNTRIES", "USA")], "SHIPPING_ALLOWED_COUNTRIES"),
        (&[("SHIPPING_ALLOWED_COUNTRIES", "US,,CA")], "SHIPPING_ALLOWED_COUNTRIES"),
        (&[("DATABASE_POOL_SIZE", "0")], "DATABASE_POOL_SIZE: must be a whole number in 1..=32"),
        (&[("DATABASE_POOL_SIZE", "33")], "DATABASE_POOL_SIZE: must be a whole number in 1..=32"),
        (&[("DATABASE_POOL_SIZE", "two")], "DATABASE_POOL_SIZE: must be a whole number in 1..=32"),
        (&[("DATABASE_IDLE_TIMEOUT_SECS", "0")], "DATABASE_IDLE_TIMEOUT_SECS: must be a whole number in 1..=3600"),
        (&[("DATABASE_IDLE_TIMEOUT_SECS", "1.5")], "DATABASE_IDLE_TIMEOUT_SECS: must be a whole number in 1..=3600"),
        (&[("DATABASE_IDLE_TIMEOUT_SECS", "86400")], "DATABASE_IDLE_TIMEOUT_SECS: must be a whole number in 1..=3600"),
    ];
    for (pairs, want) in cases {
        let err = load(pairs).expect_err(&format!("accepted {pairs:?}"));
        assert!(err.contains(want), "{pairs:?}: got {err:?}, want {want:?}");
        for (_, v) in *pairs {
            let secret_like = ["sk_", "rk_", "pk_", "whsec_"].iter().any(|p| v.trim().starts_with(p));
            if secret_like && v.trim().len() > 8 {
                assert!(!err.contains(v.trim()), "the error leaks a value: {err}");
            }
        }
    }
}

#[test]
fn accepted_forms() {
    let c = load(&[]).unwrap();
    assert_eq!(c.mode(), Mode::Test);
    assert_eq!(c.api_base, "https://api.stripe.com");
    assert_eq!(c.site_url, "http://localhost:3000");
    assert!(
        matches!(&c.database, checkout::config::Database::Sqlite(p) if p == "checkout.sqlite3"),
        "{:?}",
        c.database
    );
    assert_eq!(c.ui_mode, UiMode::Hosted);
    assert_eq!(c.max_retries, 2);
    assert!(c.webhook_secrets.is_empty() && c.publishable_key.is_none());
    assert!(!c.automatic_tax, "Stripe Tax is off by default");
    assert_eq!(c.shipping_countries, ["US", "CA"]);
    assert!(c.admin_token.is_none(), "no ADMIN_TOKEN: /api/orders is 404");
    let c = load(&[
        ("STRIPE_AUTOMATIC_TAX", "true"),
        ("SHIPPING_ALLOWED_COUNTRIES", "gb, ie,GB"),
        ("ADMIN_TOKEN", "an-admin-token-of-at-least-32-chars!"),
    ])
    .unwrap();
    assert!(c.automatic_tax);
    assert_eq!(c.shipping_countries, ["GB", "IE"]);
    assert!(c.admin_token.as_ref().is_some_and(|t| t.is_ok()));
    assert!(!format!("{c:?}").contains("an-admin-token"), "Debug hides the admin token");
    for short in ["short", "with whitespace in an otherwise long enough token"] {
        assert!(load(&[("ADMIN_TOKEN", short)]).unwrap().admin_token.is_some_and(|t| t.is_err()), "{short}");
    }

    let c = load(&[
        ("STRIPE_SECRET_KEY", "rk_test_51abcDEF"),
        ("STRIPE_PUBLISHABLE_KEY", PK),
        ("STRIPE_WEBHOOK_SECRET", "whsec_old,whsec_new"),
        ("STRIPE_API_BASE", "http://127.0.0.1:12111/"),
        ("SITE_URL", "https://shop.example/"),
        ("DATABASE_URL", "postgres://u:p@db.example/shop?sslmode=require"),
        ("CHECKOUT_UI_MODE", "embedded_page"),
        ("RATE_LIMIT_APPLY_DISCOUNT", "5/30"),
    ])
    .unwrap();
    assert_eq!(c.webhook_secrets.len(), 2);
    assert_eq!(c.api_base, "http://127.0.0.1:12111");
    assert_eq!(c.site_url, "https://shop.example");
    assert_eq!(c.publishable_key.as_ref().unwrap().as_str(), PK);
    assert_eq!(c.ui_mode, UiMode::Embedded);
    assert_eq!(c.apply_discount_limit.limit, 5);

    for base in ["http://localhost:12111", "http://[::1]:12111", "https://stripe-proxy.internal.example"] {
        assert!(load(&[("STRIPE_API_BASE", base)]).is_ok(), "{base}");
    }
    let live = load(&[
        ("STRIPE_SECRET_KEY", "sk_live_fake_config_key"),
        ("STRIPE_PUBLISHABLE_KEY", "pk_live_51abcDEF"),
        ("VERCEL_ENV", "production"),
        ("VERCEL", "1"),
        ("SITE_URL", "https://shop.example"),
        ("DATABASE_URL", "postgres://db/x"),
    ])
    .unwrap();
    assert_eq!(live.mode(), Mode::Live);
    // Debug output never shows a secret.
    let shown = format!("{live:?}");
    assert!(!shown.contains("sk_live_fake_config_key"), "{shown}");
    let cron = load(&[("CRON_SECRET", "a-cron-secret-long-enough")]).unwrap();
    assert!(!format!("{cron:?}").contains("a-cron-secret"), "Debug hides CRON_SECRET");
}

#[tokio::test]
async fn a_bad_config_answers_a_generic_500() {
    // The functions read the process environment once; here it has no key at all.
    // SAFETY: this test binary runs this one test touching the environment.
    unsafe { std::env::remove_var("STRIPE_SECRET_KEY") };
    // What every function answers when the instance's state cannot be built (src/vercel.rs).
    let resp = match checkout::App::shared() {
        Ok(_) => panic!("no STRIPE_SECRET_KEY must be a configuration error"),
        Err(reason) => checkout::http::answer(Err(checkout::http::ApiError::internal(reason))),
    };
    assert_eq!(resp.status(), 500);
    use http_body_util::BodyExt;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("reference") && !text.contains("STRIPE_SECRET_KEY"), "{text}");
}

/// Production (`VERCEL_ENV=production`): no test keys unless opted in, no other API base,
/// no published example secrets.
#[test]
fn production_refuses_test_keys_other_api_bases_and_example_secrets() {
    let prod: &[(&str, &str)] = &[
        ("VERCEL", "1"),
        ("VERCEL_ENV", "production"),
        ("SITE_URL", "https://shop.example"),
        ("DATABASE_URL", "postgres://u:p@db.example/shop"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut pairs = prod.to_vec();
        pairs.extend_from_slice(extra);
        load(&pairs)
    };
    let live: &[(&str, &str)] = &[("STRIPE_SECRET_KEY", "sk_live_fake_config_key")];
    assert!(with(live).is_ok(), "{:?}", with(live));

    let err = with(&[]).unwrap_err();
    assert!(err.contains("STRIPE_SECRET_KEY: a test key with VERCEL_ENV=production"), "{err}");
    assert!(!err.contains(SK));
    // The explicit opt-in, and nothing looser.
    assert!(with(&[("ALLOW_TEST_KEYS_IN_PRODUCTION", "true")]).is_ok());
    for v in ["1", "yes", "TRUE"] {
        let err = with(&[("ALLOW_TEST_KEYS_IN_PRODUCTION", v)]).unwrap_err();
        assert!(err.contains("ALLOW_TEST_KEYS_IN_PRODUCTION: must be true or unset"), "{err}");
    }
    // Preview deployments keep test keys without an opt-in.
    assert!(
        load(&[
            ("VERCEL", "1"),
            ("VERCEL_ENV", "preview"),
            ("SITE_URL", "https://x.example"),
            ("DATABASE_URL", "postgres://db.example/x")
        ])
        .is_ok()
    );

    // Only https://api.stripe.com, even with test keys allowed.
    for base in ["http://127.0.0.1:12111", "https://stripe-proxy.example"] {
        let err = with(&[("ALLOW_TEST_KEYS_IN_PRODUCTION", "true"), ("STRIPE_API_BASE", base)]).unwrap_err();
        assert!(err.contains("STRIPE_API_BASE: must be https://api.stripe.com"), "{base}: {err}");
    }
    assert!(with(&[("ALLOW_TEST_KEYS_IN_PRODUCTION", "true"), ("STRIPE_API_BASE", "https://API.stripe.com/")]).is_ok());

    // The example secrets of .env.example and the emulator.
    let opt_in = ("ALLOW_TEST_KEYS_IN_PRODUCTION", "true");
    for (name, value) in [
        ("STRIPE_SECRET_KEY", "sk_test_emulator"),
        ("STRIPE_PUBLISHABLE_KEY", "pk_test_emulator"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_emulator_local"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_real_one,whsec_test_secret"),
    ] {
        let err = with(&[opt_in, (name, value)]).unwrap_err();
        assert!(err.starts_with(&format!("{name}: a published example value")), "{name}: {err}");
        assert!(!err.contains(value), "{err}");
        assert!(load(&[(name, value)]).is_ok(), "{name} is fine outside production");
    }
    let live_example: &[(&str, &str)] =
        &[("STRIPE_SECRET_KEY", "sk_live_fake_config_key"), ("STRIPE_WEBHOOK_SECRET", "whsec_emulator_local")];
    assert!(with(live_example).unwrap_err().starts_with("STRIPE_WEBHOOK_SECRET: a published example value"));
}

/// A Postgres URL is parsed whole at start-up, and TLS is required to any host
/// that is not loopback (no sslmode means require).
#[test]
fn postgres_urls_are_parsed_whole_and_need_tls_off_loopback() {
    use checkout::config::postgres_config;
    use tokio_postgres::config::SslMode;
    let mode = |url: &str| postgres_config(url).map(|c| c.get_ssl_mode()).map_err(|e| e.0);
    assert_eq!(mode("postgres://u:p@db.example/shop"), Ok(SslMode::Require), "no sslmode means require");
    assert_eq!(mode("postgres://u:p@db.example/shop?sslmode=require"), Ok(SslMode::Require));
    assert_eq!(mode("postgresql://u:p@db.example:6543/shop?sslmode=verify-full"), Ok(SslMode::Require));
    assert_eq!(mode("postgres://u@db.example/shop?application_name=x&sslmode=verify-ca"), Ok(SslMode::Require));
    assert_eq!(mode("postgres://u@127.0.0.1:5432/test?sslmode=disable"), Ok(SslMode::Disable));
    assert_eq!(mode("postgres://u@localhost/test?sslmode=prefer"), Ok(SslMode::Prefer));
    assert_eq!(mode("postgres://u@[::1]/test?sslmode=disable"), Ok(SslMode::Disable));
    for url in [
        "postgres://u:p@db.example/shop?sslmode=disable",
        "postgres://u:p@db.example/shop?sslmode=prefer",
        "postgres://u:p@db.example/shop?sslmode=allow",
        "postgres://u:p@127.0.0.1,db.example/shop?sslmode=disable",
        "postgres://u:p@127.0.0.1/shop?sslmode=disable&hostaddr=10.0.0.5",
    ] {
        let err = mode(url).unwrap_err();
        assert!(err.contains("plaintext connection"), "{url}: {err}");
        assert!(!err.contains("u:p"), "{err}");
    }
    for (url, want) in [
        ("postgres://u:p@db.example:99999/shop", "not a valid Postgres URL"),
        ("postgres://u:p@db.example:abc/shop", "not a valid Postgres URL"),
        ("postgres://u:p@db.example/shop?sslmode=requir", "sslmode must be"),
        ("postgres://u:p@db.example/shop?sslmode=require&sslmode=disable", "sslmode given twice"),
        ("postgres://u:p@db.example/shop?connect_timeout=soon", "not a valid Postgres URL"),
    ] {
        let err = mode(url).unwrap_err();
        assert!(err.contains(want), "{url}: {err}");
    }
    // The same rules through the whole configuration, at start-up.
    let err = load(&[("DATABASE_URL", "postgres://u:p@db.example/shop?sslmode=prefer")]).unwrap_err();
    assert!(err.starts_with("DATABASE_URL: "), "{err}");
    let err = load(&[("DATABASE_URL", "postgres://u:p@db.example:70000/shop")]).unwrap_err();
    assert!(err.starts_with("DATABASE_URL: "), "{err}");
}

/// SITE_URL is normalised the way browsers write an Origin.
#[test]
fn site_url_is_normalised() {
    for (given, want) in [
        ("https://Shop.Example.com:443/", "https://shop.example.com"),
        ("HTTPS://SHOP.EXAMPLE.COM", "https://shop.example.com"),
        ("https://shop.example.com:8443/", "https://shop.example.com:8443"),
        ("http://LOCALHOST:80/", "http://localhost"),
        ("http://localhost:3000", "http://localhost:3000"),
    ] {
        let c = load(&[("SITE_URL", given)]).unwrap();
        assert_eq!(c.site_url, want, "{given}");
        // The browser's Origin for that site passes the same-site check.
        let mut h = http::HeaderMap::new();
        h.insert("origin", want.parse().unwrap());
        assert!(checkout::http::require_same_site(&h, &c.site_url).is_ok(), "{given}");
    }
}

/// Production never points shoppers at this machine: the `.env.example` value
/// (`http://localhost:3000`) or any loopback origin is refused with the reason (issue 19).
#[test]
fn production_refuses_a_loopback_site_url() {
    let prod = |site: &'static str| {
        load(&[
            ("VERCEL", "1"),
            ("VERCEL_ENV", "production"),
            ("STRIPE_SECRET_KEY", "sk_live_fake_config_key"),
            ("SITE_URL", site),
            ("DATABASE_URL", "postgres://u:p@db.example/shop"),
        ])
    };
    for site in [
        "http://localhost:3000",
        "http://127.0.0.1:3000",
        "http://[::1]:8080",
        "https://localhost",
        "https://127.0.0.2",
        "https://shop.localhost",
        "https://0.0.0.0",
    ] {
        let err = prod(site).unwrap_err();
        assert!(
            err.starts_with("SITE_URL: with VERCEL_ENV=production it must be the shop's public https origin"),
            "{site}: {err}"
        );
    }
    assert!(prod("https://shop.example").is_ok());
    // Locally, and on preview deployments, loopback stays allowed.
    assert!(load(&[("SITE_URL", "http://localhost:3000")]).is_ok());
}

#[test]
fn database_pool_settings_reach_the_postgres_store() {
    use checkout::config::{Database, PoolConfig};
    let pool = |c: &checkout::Config| match &c.database {
        Database::Postgres(_, pool) => *pool,
        other => panic!("not Postgres: {other:?}"),
    };
    let pg = [("DATABASE_URL", "postgres://u@127.0.0.1:5432/shop?sslmode=disable")];
    let defaults = pool(&load(&pg).unwrap());
    assert_eq!(defaults, PoolConfig::default());
    assert!(defaults.size <= 4, "a small pool per instance by default: {defaults:?}");
    assert!(defaults.idle_timeout <= std::time::Duration::from_secs(30), "idle connections close soon: {defaults:?}");
    let set = load(&[pg[0], ("DATABASE_POOL_SIZE", "5"), ("DATABASE_IDLE_TIMEOUT_SECS", "2")]).unwrap();
    assert_eq!(pool(&set), PoolConfig { size: 5, idle_timeout: std::time::Duration::from_secs(2) });
    let store = checkout::store::Store::open(&set.database).unwrap();
    let checkout::store::Store::Postgres(pg_store) = &store else { panic!("not the Postgres store") };
    assert_eq!(pg_store.pool().size, 5, "PgStore::new gets the settings");
}

/// `.env.example` and `config.rs` name the same variables (issue 21): every variable the
/// functions read is documented there, and every variable there is read by the functions or
/// by the dev server.
#[test]
fn env_example_and_config_name_the_same_variables() {
    let asked = std::sync::Mutex::new(std::collections::BTreeSet::new());
    // Settings read only when another is set: each branch once.
    for (database, email) in [("postgres://u@127.0.0.1:5432/shop?sslmode=disable", true), ("sqlite://x.sqlite3", false)]
    {
        let _ = Config::from_lookup(|k| {
            asked.lock().unwrap().insert(k.to_string());
            match k {
                "STRIPE_SECRET_KEY" => Some(SK.to_string()),
                "DATABASE_URL" => Some(database.to_string()),
                "EMAIL_API_KEY" if email => Some("re_test_key".to_string()),
                "EMAIL_FROM" if email => Some("a@shop.example".to_string()),
                _ => None,
            }
        })
        .expect("a minimal configuration loads");
    }
    let mut read = asked.into_inner().unwrap();
    // Set by Vercel itself, never by the owner.
    read.remove("VERCEL");
    read.remove("VERCEL_ENV");
    let root = env!("CARGO_MANIFEST_DIR");
    let example = std::fs::read_to_string(format!("{root}/.env.example")).unwrap();
    let documented: std::collections::BTreeSet<String> = example
        .lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .map(String::from)
        .collect();
    let missing: Vec<_> = read.difference(&documented).collect();
    assert!(missing.is_empty(), "read by config.rs but not in .env.example: {missing:?}");
    let devserver = std::fs::read_to_string(format!("{root}/devserver/src/main.rs")).unwrap();
    let unread: Vec<_> = documented.difference(&read).filter(|k| !devserver.contains(&format!("\"{k}\""))).collect();
    assert!(unread.is_empty(), "in .env.example but read by neither config.rs nor the dev server: {unread:?}");
}

/// The shopper's email: unset is none (never an error), a key needs a sender, the key is never
/// shown, production sends only to Resend (issue 20).
#[test]
fn email_settings_are_all_or_nothing_and_the_key_stays_hidden() {
    assert!(load(&[]).unwrap().email.is_none(), "unset: no email");
    let email = load(&[("EMAIL_API_KEY", "re_secret_123456"), ("EMAIL_FROM", "Shop <orders@shop.example>")])
        .unwrap()
        .email
        .expect("configured");
    assert_eq!(email.api_base, "https://api.resend.com");
    assert!(!email.order_confirmation, "order confirmed is off by default");
    assert!(!format!("{email:?}").contains("re_secret_123456"), "Debug hides the key");
    for (pairs, want) in [
        (&[("EMAIL_API_KEY", "re_x")][..], "EMAIL_FROM: required with EMAIL_API_KEY"),
        (&[("EMAIL_FROM", "a@b.example")][..], "EMAIL_API_KEY: required with EMAIL_FROM"),
        (&[("EMAIL_API_KEY", "re_x"), ("EMAIL_FROM", "nobody")][..], "EMAIL_FROM: must be an address"),
        (
            &[("EMAIL_API_KEY", "re_x\n"), ("EMAIL_FROM", "a@b.example")][..],
            "EMAIL_API_KEY: empty or contains whitespace",
        ),
        (
            &[("EMAIL_API_KEY", "re_x"), ("EMAIL_FROM", "a@b.example"), ("EMAIL_ORDER_CONFIRMATION", "yes")][..],
            "EMAIL_ORDER_CONFIRMATION",
        ),
    ] {
        let err = load(pairs).unwrap_err();
        assert!(err.starts_with(want), "{pairs:?}: {err}");
        assert!(!err.contains("re_x"), "{err}");
    }
    let prod = load(&[
        ("VERCEL", "1"),
        ("VERCEL_ENV", "production"),
        ("STRIPE_SECRET_KEY", "sk_live_fake_config_key"),
        ("SITE_URL", "https://shop.example"),
        ("DATABASE_URL", "postgres://u:p@db.example/shop"),
        ("EMAIL_API_KEY", "re_live"),
        ("EMAIL_FROM", "a@shop.example"),
        ("EMAIL_API_BASE", "https://mail-proxy.example"),
    ]);
    assert!(prod.unwrap_err().starts_with("EMAIL_API_BASE: must be https://api.resend.com"));
}

#[test]
fn the_catalog_source_and_tag() {
    use checkout::config::CatalogSource;
    assert_eq!(load(&[]).unwrap().catalog_source, CatalogSource::File);
    assert_eq!(load(&[("CATALOG_SOURCE", "file"), ("CATALOG_TAG", "x")]).unwrap().catalog_source, CatalogSource::File);
    assert_eq!(
        load(&[("CATALOG_SOURCE", "stripe")]).unwrap().catalog_source,
        CatalogSource::Stripe { tag: checkout::config::DEFAULT_CATALOG_TAG.into() }
    );
    assert_eq!(
        load(&[("CATALOG_SOURCE", "stripe"), ("CATALOG_TAG", "my-shop.eu")]).unwrap().catalog_source,
        CatalogSource::Stripe { tag: "my-shop.eu".into() }
    );
    for (source, tag, error) in [
        ("Stripe", "", "CATALOG_SOURCE: must be file or stripe"),
        ("json", "", "CATALOG_SOURCE: must be file or stripe"),
        ("stripe", "my shop", "CATALOG_TAG: must be 1-100 of [A-Za-z0-9_.-]"),
        ("stripe", "ünï", "CATALOG_TAG"),
    ] {
        let e = load(&[("CATALOG_SOURCE", source), ("CATALOG_TAG", tag)]).unwrap_err();
        assert!(e.contains(error), "{source} {tag}: {e}");
        assert!(tag.is_empty() || !e.contains(tag), "the value is never repeated: {e}");
    }
}
