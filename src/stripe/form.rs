//! `application/x-www-form-urlencoded` with Stripe's nested keys.

/// Ordered form parameters with Stripe's bracket keys (`a[b][0][c]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// An empty form.
    pub fn new() -> Self {
        Form(Vec::new())
    }

    /// Appends `key=value`.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.push((key.into(), value.into()));
        self
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Encodes the pairs; brackets stay literal as stripe-node sends them.
    pub fn encode(&self) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            ser.append_pair(k, v);
        }
        ser.finish().replace("%5B", "[").replace("%5D", "]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_nested_keys_and_escapes_values() {
        let mut f = Form::new();
        f.push("line_items[0][price_data][product_data][name]", "Tee & Mug = 2")
            .push("success_url", "https://x.test/s?session_id={CHECKOUT_SESSION_ID}");
        assert_eq!(
            f.encode(),
            "line_items[0][price_data][product_data][name]=Tee+%26+Mug+%3D+2&\
             success_url=https%3A%2F%2Fx.test%2Fs%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D"
        );
        let back: Vec<(String, String)> =
            form_urlencoded::parse(f.encode().as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        assert_eq!(back, f.pairs());
    }
}
