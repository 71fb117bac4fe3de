//! `GET /api/orders`, the owner's order list, over real HTTP: 404 while `ADMIN_TOKEN` is unset,
//! 401 for a missing, wrong or partial token, a limit on attempts, `no-store`, pages newest
//! first, and nothing personal or secret in the answer.

use crate::common::{Shop, ShopOptions, shop};
use checkout::order::OrderState;

const TOKEN: &str = "owner-token-0123456789abcdefghijklmnop";
/// A cart with nothing to ship (the emulator's hosted page then asks for no address).
const DIGITAL: &str = r#"{"items":[{"id":"wallpapers","quantity":1}]}"#;

async fn owner_shop(extra: Vec<(&'static str, String)>) -> Shop {
    let mut env = vec![("ADMIN_TOKEN", TOKEN.to_string())];
    env.extend(extra);
    shop(ShopOptions { env, ..Default::default() }).await
}

async fn get(s: &Shop, path: &str, auth: Option<&str>) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut req = s.http.get(s.url(path)).header("x-real-ip", "198.51.100.7");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    crate::common::split(req.send().await.unwrap()).await
}

async fn fulfilled_order(s: &Shop) -> String {
    let id = s.checkout(DIGITAL).await;
    s.pay(&id, "pay").await;
    s.wait_order(&id, |o| o.state == OrderState::Fulfilled).await;
    id
}

#[tokio::test]
async fn unset_token_is_404_and_wrong_tokens_are_401() {
    let s = shop(ShopOptions::default()).await;
    let (status, headers, _) = get(&s, "/api/orders", Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 404, "no ADMIN_TOKEN: the route does not exist");
    assert_eq!(headers["cache-control"], "no-store");

    let s = owner_shop(vec![]).await;
    let bearer = format!("Bearer {TOKEN}");
    let prefix = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let longer = format!("Bearer {TOKEN}x");
    let lowercase = format!("bearer {TOKEN}");
    let basic = format!("Basic {TOKEN}");
    let mut bodies = Vec::new();
    for auth in [None, Some("Bearer wrong"), Some(prefix.as_str()), Some(&longer), Some(&lowercase), Some(&basic)] {
        let (status, headers, json) = get(&s, "/api/orders", auth).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(headers["cache-control"], "no-store");
        bodies.push(json);
    }
    assert!(bodies.iter().all(|b| b == &serde_json::json!({"error": {"message": "unauthorized"}})), "{bodies:?}");
    let (status, headers, json) = get(&s, "/api/orders", Some(&bearer)).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(json["data"], serde_json::json!([]));
}

#[tokio::test]
async fn a_short_token_refuses_every_call_and_attempts_are_limited() {
    let s = shop(ShopOptions { env: vec![("ADMIN_TOKEN", "too-short".into())], ..Default::default() }).await;
    let (status, _, json) = get(&s, "/api/orders", Some("Bearer too-short")).await;
    assert_eq!(status, 500, "a short ADMIN_TOKEN is a configuration error: {json}");
    assert!(!json.to_string().contains("too-short"));

    let s = owner_shop(vec![("RATE_LIMIT_ORDERS", "3/60".into())]).await;
    for _ in 0..3 {
        assert_eq!(get(&s, "/api/orders", Some("Bearer guess")).await.0, 401);
    }
    let (status, headers, _) = get(&s, "/api/orders", Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 429, "past the limit even the right token waits");
    assert!(headers.contains_key("retry-after"));
}

/// An IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`, what a dual-stack socket reports) is its own
/// IPv4 client, not one bucket shared by every IPv4 client (issue 19).
#[tokio::test]
async fn ipv4_mapped_clients_are_limited_each_as_their_ipv4_address() {
    let s = owner_shop(vec![("RATE_LIMIT_ORDERS", "2/60".into())]).await;
    crate::common::within_one_window(60, 10).await;
    let call = |ip: &'static str| s.http.get(s.url("/api/orders")).header("x-real-ip", ip).bearer_auth("guess").send();
    for _ in 0..2 {
        assert_eq!(call("::ffff:203.0.113.10").await.unwrap().status(), 401);
    }
    assert_eq!(call("::ffff:203.0.113.10").await.unwrap().status(), 429, "the first client is past its limit");
    assert_eq!(call("203.0.113.10").await.unwrap().status(), 429, "the same client, written as IPv4");
    assert_eq!(call("::ffff:203.0.113.11").await.unwrap().status(), 401, "another IPv4 client has its own limit");
}

/// Abandoned checkouts (anyone can make them) do not pad the owner's list: paid orders by
/// default, the rest behind `state` (issue 19).
#[tokio::test]
async fn the_list_shows_paid_orders_by_default_and_the_rest_on_request() {
    let s = owner_shop(vec![]).await;
    let paid = fulfilled_order(&s).await;
    let abandoned = s.checkout(DIGITAL).await;
    s.expire(&abandoned).await;
    let ids = |json: &serde_json::Value| -> Vec<String> {
        json["data"].as_array().unwrap().iter().map(|o| o["session_id"].as_str().unwrap().to_string()).collect()
    };
    let auth = format!("Bearer {TOKEN}");
    let (status, _, json) = get(&s, "/api/orders", Some(&auth)).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(ids(&json), vec![paid.clone()], "only the paid order by default");
    let (_, _, json) = get(&s, "/api/orders?state=all", Some(&auth)).await;
    let mut all = ids(&json);
    all.sort();
    let mut want = vec![abandoned.clone(), paid.clone()];
    want.sort();
    assert_eq!(all, want, "all, the abandoned checkout included");
    let (_, _, json) = get(&s, "/api/orders?state=expired", Some(&auth)).await;
    assert_eq!(ids(&json), vec![abandoned]);
    let (status, _, json) = get(&s, "/api/orders?state=bogus", Some(&auth)).await;
    assert_eq!(status, 400, "{json}");
}

#[tokio::test]
async fn pages_newest_first_with_numbers_totals_and_nothing_personal() {
    let s = owner_shop(vec![]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(fulfilled_order(&s).await);
    }
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, first) = get(&s, "/api/orders?limit=2", Some(&bearer)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["has_more"], true);
    let page: Vec<&serde_json::Value> = first["data"].as_array().unwrap().iter().collect();
    assert_eq!(page.len(), 2);
    let next = first["next_starting_after"].as_str().unwrap();
    assert_eq!(next, page[1]["session_id"]);
    let (_, _, second) = get(&s, &format!("/api/orders?limit=2&starting_after={next}"), Some(&bearer)).await;
    assert_eq!(second["has_more"], false);
    assert_eq!(second["next_starting_after"], serde_json::Value::Null);
    let mut listed: Vec<&serde_json::Value> = page;
    listed.extend(second["data"].as_array().unwrap());
    assert_eq!(listed.len(), 3);
    let times: Vec<i64> = listed.iter().map(|o| o["created_at"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    for o in &listed {
        assert!(ids.iter().any(|id| o["session_id"] == id.as_str()));
        assert!(o["order_number"].as_str().is_some_and(|n| n.starts_with("RR-")), "{o}");
        assert_eq!(o["fulfillment"], "fulfilled");
        assert_eq!(o["money_state"], "paid");
        assert_eq!(o["items"][0]["name"], "Crab Wallpaper Pack");
        assert_eq!(o["totals"]["amount_total"], 400);
        assert_eq!(o["shipping_country"], serde_json::Value::Null, "nothing ships");
        assert!(o["history"].as_array().is_some());
    }
    let text = format!("{first}{second}");
    for secret in [TOKEN, crate::common::SECRET_KEY, crate::common::WEBHOOK_SECRET] {
        assert!(!text.contains(secret), "a secret in the list");
    }
    for personal in ["email", "@", "card", "pi_", "address", "line1", "\"name\":\"Jenny"] {
        assert!(!text.contains(personal), "{personal} in the list: {text}");
    }
    let (status, _, _) = get(&s, "/api/orders?limit=0", Some(&bearer)).await;
    assert_eq!(status, 400);
    let (status, _, _) = get(&s, "/api/orders?starting_after=nope", Some(&bearer)).await;
    assert_eq!(status, 400);
}

/// The owner's view of one order carries what the list never does — the shopper's email, the
/// shipping name and address — behind the same token; the list stays free of it (issue 20).
#[tokio::test]
async fn one_order_shows_the_owner_who_bought_it_and_where_it_ships() {
    let s = owner_shop(vec![]).await;
    let (id, number) = s.paid(r#"{"items":[{"id":"mug","quantity":1}]}"#).await;
    let auth = format!("Bearer {TOKEN}");
    let (status, headers, json) = get(&s, &format!("/api/orders?order={number}"), Some(&auth)).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(json["order"]["order_number"], number.as_str());
    assert_eq!(json["customer"]["email"], "shopper@example.com", "{json}");
    assert!(json["customer"]["shipping"]["address"]["line1"].is_string(), "{json}");
    assert!(json["customer"]["shipping"]["name"].is_string(), "{json}");
    // By session id too; an unknown number is 404, a malformed one 400, no token 401.
    let (status, _, by_session) = get(&s, &format!("/api/orders?order={id}"), Some(&auth)).await;
    assert_eq!((status, &by_session["order"]["order_number"]), (200, &json["order"]["order_number"]));
    assert_eq!(get(&s, "/api/orders?order=RR-0000-00", Some(&auth)).await.0, 404);
    assert_eq!(get(&s, "/api/orders?order=%3Cscript%3E", Some(&auth)).await.0, 400);
    assert_eq!(get(&s, &format!("/api/orders?order={number}"), None).await.0, 401);
    // The list itself still carries no personal data.
    let (_, _, list) = get(&s, "/api/orders", Some(&auth)).await;
    let text = list.to_string();
    assert!(!text.contains("shopper@example.com") && !text.contains("line1"), "{text}");
}
