//! Currencies the emulator accepts and how an amount is shown on the hosted page and in
//! messages.

/// Currencies the emulator accepts, with their decimal digits.
pub(crate) const CURRENCIES: &[(&str, u32)] = &[
    ("usd", 2),
    ("eur", 2),
    ("gbp", 2),
    ("cad", 2),
    ("aud", 2),
    ("nzd", 2),
    ("chf", 2),
    ("sek", 2),
    ("nok", 2),
    ("dkk", 2),
    ("pln", 2),
    ("czk", 2),
    ("sgd", 2),
    ("hkd", 2),
    ("mxn", 2),
    ("brl", 2),
    ("inr", 2),
    ("jpy", 0),
    ("krw", 0),
];

/// Formats a minor-unit amount for display, e.g. `$20.00`, `€5.00`, `¥500`.
pub(crate) fn fmt_money(amount: i64, currency: &str) -> String {
    let digits = CURRENCIES.iter().find(|c| c.0 == currency).map(|c| c.1).unwrap_or(2);
    let neg = if amount < 0 { "-" } else { "" };
    let a = amount.unsigned_abs();
    let num = if digits == 0 {
        a.to_string()
    } else {
        let p = 10u64.pow(digits);
        format!("{}.{:0w$}", a / p, a % p, w = digits as usize)
    };
    let sym = match currency {
        "usd" => "$",
        "eur" => "€",
        "gbp" => "£",
        "jpy" => "¥",
        _ => "",
    };
    if sym.is_empty() { format!("{neg}{num} {}", currency.to_uppercase()) } else { format!("{neg}{sym}{num}") }
}
