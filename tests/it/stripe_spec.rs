//! Every parameter the shop sends to Stripe validates against Stripe's OpenAPI spec (the slice
//! the emulator ships, `emulator/spec/spec-slice.json`): names, types, enums, required fields
//! and lengths of the exact create-session form for every kind of cart and configuration, the
//! retrieval query fulfilment sends, and the country list `SHIPPING_ALLOWED_COUNTRIES` is
//! checked against.

use checkout::cart::{CartRequest, ItemRequest};
use checkout::discount::AppliedDiscount;
use checkout::{Config, session};
use std::collections::HashMap;
use stripe_emulator::spec;

fn config(extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<&str, &str> = HashMap::from([
        ("STRIPE_SECRET_KEY", "sk_test_spec4242"),
        ("SITE_URL", "https://shop.example"),
        ("DATABASE_URL", "sqlite://unused.sqlite3"),
    ]);
    env.extend(extra.iter().copied());
    Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).expect("valid config")
}

fn cart(items: &[(&str, i64)]) -> checkout::cart::Cart {
    let request = CartRequest {
        items: items.iter().map(|(id, quantity)| ItemRequest { id: id.to_string(), quantity: *quantity }).collect(),
        code: None,
    };
    request.validate().expect("valid cart")
}

#[test]
fn every_create_session_form_validates_against_the_spec() {
    let carts = [
        vec![("tshirt", 2), ("mug", 1)],
        vec![("hoodie", 2)],
        vec![("wallpapers", 1)],
        vec![("wallpapers", 1), ("stickers", 20)],
    ];
    let configs = [
        vec![],
        vec![("STRIPE_AUTOMATIC_TAX", "true")],
        vec![("CHECKOUT_UI_MODE", "embedded_page"), ("STRIPE_AUTOMATIC_TAX", "true")],
        vec![("SHIPPING_ALLOWED_COUNTRIES", "GB,IE,FR,DE,US,CA,AU,NZ,JP")],
    ];
    let discount = AppliedDiscount { promotion_code: "promo_1SAVE10".into(), amount: 100 };
    let mut checked = 0;
    for env in &configs {
        let config = config(env);
        for items in &carts {
            for d in [None, Some(&discount)] {
                let form = session::params(&config, &cart(items), d);
                if let Err(e) = spec::check_form("POST", "/v1/checkout/sessions", form.pairs()) {
                    panic!("{env:?} {items:?}: Stripe would refuse {e}\n{:#?}", form.pairs());
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 32);
    // The check has teeth: what Stripe refuses, it refuses.
    let pairs = |k: &str, v: &str| vec![("mode".to_string(), "payment".to_string()), (k.to_string(), v.to_string())];
    for (k, v) in [
        ("shipping_options[0][shipping_rate_data][type]", "flat"),
        ("shipping_options[0][shipping_rate_data][fixed_amount][amount]", "5.00"),
        ("shipping_address_collection[allowed_countries][]", "XX"),
        ("automatic_tax[enabled]", "yes"),
        ("line_items[0][price_data][tax_behavior]", "included"),
        ("shipping_rates[0]", "shr_1"),
    ] {
        assert!(spec::check_form("POST", "/v1/checkout/sessions", &pairs(k, v)).is_err(), "{k}={v} accepted");
    }
}

#[test]
fn the_retrieval_query_validates_against_the_spec() {
    let q =
        [("expand[]".to_string(), "line_items".to_string()), ("expand[]".into(), "shipping_cost.shipping_rate".into())];
    spec::check_form("GET", "/v1/checkout/sessions/cs_test_a1", &q).expect("retrieve query");
}

#[test]
fn the_shipping_country_list_is_stripes() {
    let enum_ = &spec::document()["paths"]["/v1/checkout/sessions"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
        ["schema"]["properties"]["shipping_address_collection"]["properties"]["allowed_countries"]["items"]["enum"];
    let spec_codes: Vec<&str> = enum_.as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    let ours: Vec<&str> = checkout::config::STRIPE_SHIPPING_COUNTRIES.split_whitespace().collect();
    assert_eq!(ours, spec_codes);
    for c in checkout::config::DEFAULT_SHIPPING_COUNTRIES {
        assert!(spec_codes.contains(c));
    }
}

#[test]
fn a_cart_priced_by_stripe_price_ids_validates_against_the_spec() {
    // The Stripe catalog source: every product carries its default Price's id.
    let offer = checkout::catalog::Offer {
        on_sale: checkout::catalog::products()
            .iter()
            .map(|p| checkout::catalog::Product { price: Some(format!("price_1{}", p.id)), ..p.clone() })
            .collect(),
        withdrawn: vec![],
    };
    let request = CartRequest {
        items: vec![
            ItemRequest { id: "tshirt".into(), quantity: 2 },
            ItemRequest { id: "wallpapers".into(), quantity: 1 },
        ],
        code: None,
    };
    let cart = request.validate_in(&offer).expect("valid cart");
    for env in [vec![], vec![("STRIPE_AUTOMATIC_TAX", "true")]] {
        let form = session::params(&config(&env), &cart, None);
        assert!(form.pairs().iter().any(|(k, v)| k == "line_items[0][price]" && v == "price_1tshirt"));
        assert!(!form.pairs().iter().any(|(k, _)| k.contains("price_data")), "{:?}", form.pairs());
        spec::check_form("POST", "/v1/checkout/sessions", form.pairs()).expect("Stripe takes it");
    }
}
