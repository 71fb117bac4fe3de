//! vercel.json's `headers`, applied to a static file's path the way Vercel applies them, so the
//! dev server serves every page with exactly the headers a deployment gives it.
//!
//! Vercel turns each `{"source", "headers"}` entry into a route `{"src": REGEX, "headers",
//! "continue": true}` (`.vercel/output/config.json`; `convertHeaders` in `@vercel/routing-utils`):
//! `src` is `source` compiled by path-to-regexp 6 with `strict` and `sensitive` on, so it must
//! match the whole path, case included, with no trailing slash allowed. Every matching entry
//! applies, in file order; a later entry's value for a key an earlier one set replaces it (what
//! `vercel dev`'s router does: `combinedHeaders[key.toLowerCase()] = value`). vercel.json keeps
//! the sources that set the same key disjoint, so that rule never decides anything there.
//!
//! Supported sources: literal text (`/`, `/index.html`, `\` escapes a character) and unnamed
//! groups `(REGEX)` of JavaScript regex syntax without character classes or counted repeats:
//! `.`, `*`, `+`, `?` (lazy or not), `|`, `^`, `$`, `(?:…)`, `(?!…)`, `(?=…)`. Anything else —
//! `:name` parameters, a modifier after a group, `has`/`missing` conditions — is refused when
//! the dev server starts instead of being matched differently from Vercel.

use axum::http::{HeaderName, HeaderValue};

/// vercel.json's header entries, in file order.
pub(crate) struct HeaderRules {
    rules: Vec<Rule>,
}

struct Rule {
    pattern: Vec<Node>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderRules {
    /// Parses the `headers` array of vercel.json's text; refuses a source or condition this
    /// module would not match the way Vercel does.
    pub(crate) fn from_vercel_json(text: &str) -> Result<HeaderRules, String> {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("vercel.json: {e}"))?;
        let mut rules = Vec::new();
        for entry in json["headers"].as_array().into_iter().flatten() {
            let source = entry["source"].as_str().ok_or("vercel.json: a headers entry without a source")?;
            for condition in ["has", "missing"] {
                if !entry[condition].is_null() {
                    return Err(format!(
                        "vercel.json: headers for {source:?} use `{condition}`, which the dev server does not match"
                    ));
                }
            }
            let pattern = compile(source).map_err(|e| format!("vercel.json: headers source {source:?}: {e}"))?;
            let mut headers = Vec::new();
            for h in entry["headers"].as_array().into_iter().flatten() {
                let (Some(k), Some(v)) = (h["key"].as_str(), h["value"].as_str()) else {
                    return Err(format!("vercel.json: headers for {source:?}: each needs a key and a value"));
                };
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("vercel.json: {k:?}: {e}"))?;
                let value = HeaderValue::from_str(v).map_err(|e| format!("vercel.json: {k}: {e}"))?;
                headers.push((name, value));
            }
            rules.push(Rule { pattern, headers });
        }
        Ok(HeaderRules { rules })
    }

    /// The headers for `path` (the request's path, no query): those of every entry whose
    /// source matches it, a later entry's value replacing an earlier one's for the same key.
    pub(crate) fn for_path(&self, path: &str) -> Vec<(HeaderName, HeaderValue)> {
        let chars: Vec<char> = path.chars().collect();
        let mut out: Vec<(HeaderName, HeaderValue)> = Vec::new();
        for rule in self.rules.iter().filter(|r| full_match(&r.pattern, &chars)) {
            for (name, value) in &rule.headers {
                match out.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.clone(),
                    None => out.push((name.clone(), value.clone())),
                }
            }
        }
        out
    }
}

/// One element of a compiled source.
#[derive(Debug)]
enum Node {
    /// This character.
    Char(char),
    /// Any character but a line terminator (JavaScript's `.`).
    Any,
    /// `^`: the start of the path.
    Start,
    /// `$`: the end of the path.
    End,
    /// A group, capturing or not: one of the alternatives.
    Group(Vec<Vec<Node>>),
    /// `(?!…)` (negative) or `(?=…)`: whether one of the alternatives matches here, consuming
    /// nothing.
    Look { negative: bool, alternatives: Vec<Vec<Node>> },
    /// `*` (0..), `+` (1..) or `?` (0..=1) of a node.
    Repeat { node: Box<Node>, min: usize, max: Option<usize> },
}

/// A path-to-regexp source as a sequence to match against the whole path.
fn compile(source: &str) -> Result<Vec<Node>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let c = *chars.get(i + 1).ok_or("ends with a lone backslash")?;
                out.push(Node::Char(c));
                i += 2;
            }
            '(' => {
                let mut parser = Parser { chars: &chars, at: i + 1 };
                let alternatives = parser.alternatives()?;
                if parser.chars.get(parser.at) != Some(&')') {
                    return Err(format!("group at {i} is not closed"));
                }
                i = parser.at + 1;
                if let Some(m) = chars.get(i).filter(|c| matches!(c, '?' | '*' | '+')) {
                    return Err(format!("a `{m}` after a group (an optional or repeated parameter) is not supported"));
                }
                out.push(Node::Group(alternatives));
            }
            ':' => return Err("named parameters (`:name`) are not supported".into()),
            c @ ('*' | '+' | '?' | '{' | '}' | ')') => return Err(format!("`{c}` outside a group is not supported")),
            c => {
                out.push(Node::Char(c));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// A recursive-descent parser of the regex inside a source's group.
struct Parser<'a> {
    chars: &'a [char],
    at: usize,
}

impl Parser<'_> {
    /// `a|b|…` up to a `)` or the end (left unconsumed).
    fn alternatives(&mut self) -> Result<Vec<Vec<Node>>, String> {
        let mut alternatives = vec![self.sequence()?];
        while self.chars.get(self.at) == Some(&'|') {
            self.at += 1;
            alternatives.push(self.sequence()?);
        }
        Ok(alternatives)
    }

    /// Atoms, each with an optional quantifier, up to a `|`, a `)` or the end.
    fn sequence(&mut self) -> Result<Vec<Node>, String> {
        let mut out = Vec::new();
        while let Some(&c) = self.chars.get(self.at) {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            let (min, max) = match self.chars.get(self.at) {
                Some('*') => (0, None),
                Some('+') => (1, None),
                Some('?') => (0, Some(1)),
                Some('{') => return Err("counted repeats (`{n,m}`) are not supported".into()),
                _ => {
                    out.push(atom);
                    continue;
                }
            };
            if matches!(atom, Node::Start | Node::End | Node::Look { .. }) {
                return Err(format!("a quantifier after an assertion at {}", self.at));
            }
            self.at += 1;
            // Lazy or greedy only changes what a group captures, not whether the path matches.
            if self.chars.get(self.at) == Some(&'?') {
                self.at += 1;
            }
            out.push(Node::Repeat { node: Box::new(atom), min, max });
        }
        Ok(out)
    }

    fn atom(&mut self) -> Result<Node, String> {
        let c = self.chars[self.at];
        self.at += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '\\' => {
                let e = *self.chars.get(self.at).ok_or("ends with a lone backslash")?;
                if e.is_ascii_alphanumeric() {
                    return Err(format!("the escape `\\{e}` is not supported"));
                }
                self.at += 1;
                Node::Char(e)
            }
            '(' => {
                let look = match (self.chars.get(self.at), self.chars.get(self.at + 1)) {
                    (Some('?'), Some(':')) => Some(None),
                    (Some('?'), Some('!')) => Some(Some(true)),
                    (Some('?'), Some('=')) => Some(Some(false)),
                    (Some('?'), _) => return Err(format!("the group kind at {} is not supported", self.at)),
                    _ => None,
                };
                if look.is_some() {
                    self.at += 2;
                }
                let alternatives = self.alternatives()?;
                if self.chars.get(self.at) != Some(&')') {
                    return Err("a group is not closed".into());
                }
                self.at += 1;
                match look {
                    Some(Some(negative)) => Node::Look { negative, alternatives },
                    _ => Node::Group(alternatives),
                }
            }
            '[' | ']' => return Err("character classes (`[…]`) are not supported".into()),
            c @ ('*' | '+' | '?' | '{' | '}') => {
                return Err(format!("`{c}` with nothing to repeat at {}", self.at - 1));
            }
            c => Node::Char(c),
        })
    }
}

/// Whether `nodes` match all of `path` (Vercel anchors `src` at both ends).
fn full_match(nodes: &[Node], path: &[char]) -> bool {
    sequence(nodes, path, 0, &mut |end| end == path.len())
}

/// Backtracking: whether `nodes` match from `at` with the continuation `then` accepting
/// where they end.
fn sequence(nodes: &[Node], s: &[char], at: usize, then: &mut dyn FnMut(usize) -> bool) -> bool {
    match nodes.split_first() {
        None => then(at),
        Some((first, rest)) => one(first, s, at, &mut |next| sequence(rest, s, next, then)),
    }
}

fn one(node: &Node, s: &[char], at: usize, then: &mut dyn FnMut(usize) -> bool) -> bool {
    match node {
        Node::Char(c) => s.get(at) == Some(c) && then(at + 1),
        Node::Any => s.get(at).is_some_and(|c| !matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')) && then(at + 1),
        Node::Start => at == 0 && then(at),
        Node::End => at == s.len() && then(at),
        Node::Group(alternatives) => alternatives.iter().any(|a| sequence(a, s, at, then)),
        Node::Look { negative, alternatives } => {
            let found = alternatives.iter().any(|a| sequence(a, s, at, &mut |_| true));
            found != *negative && then(at)
        }
        Node::Repeat { node, min, max } => repeat(node, *min, *max, 0, s, at, then),
    }
}

/// Greedy repetition: one more `node` when allowed (never an empty one once `min` is reached,
/// so it ends), else stop here if at least `min` matched.
fn repeat(
    node: &Node,
    min: usize,
    max: Option<usize>,
    count: usize,
    s: &[char],
    at: usize,
    then: &mut dyn FnMut(usize) -> bool,
) -> bool {
    let more = max.is_none_or(|m| count < m)
        && one(node, s, at, &mut |next| {
            (next != at || count < min) && repeat(node, min, max, count + 1, s, next, then)
        });
    more || (count >= min && then(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(source: &str, path: &str) -> bool {
        let chars: Vec<char> = path.chars().collect();
        full_match(&compile(source).unwrap_or_else(|e| panic!("{source}: {e}")), &chars)
    }

    /// What Vercel's compiled `src` matches, as path-to-regexp 6.3.0 (the CLI's
    /// `node_modules/path-to-regexp-updated`, `{strict: true, sensitive: true, delimiter: "/"}`)
    /// answered for these sources and paths.
    #[test]
    fn sources_match_what_path_to_regexp_matches() {
        let paths = ["/", "/index.html", "/admin.html", "/app.js", "/index.htmlx", "/x/index.html", "", "/a/b"];
        let table: [(&str, &[&str]); 6] = [
            ("/(.*)", &["/", "/index.html", "/admin.html", "/app.js", "/index.htmlx", "/x/index.html", "/a/b"]),
            ("/", &["/"]),
            ("/index.html", &["/index.html"]),
            ("/(|index\\.html)", &["/", "/index.html"]),
            ("/((?!index\\.html$).+)", &["/admin.html", "/app.js", "/index.htmlx", "/x/index.html", "/a/b"]),
            ("/((?!index\\.html$).*)", &["/", "/admin.html", "/app.js", "/index.htmlx", "/x/index.html", "/a/b"]),
        ];
        for (source, want) in table {
            let got: Vec<&str> = paths.iter().copied().filter(|p| matches(source, p)).collect();
            assert_eq!(got, want, "source {source}");
        }
        // Case-sensitive, no trailing slash, the whole path.
        assert!(!matches("/index.html", "/INDEX.html"));
        assert!(!matches("/index.html", "/index.html/"));
        assert!(!matches("/index.html", "/index.htmlx"));
        assert!(!matches("/index.html", "/indexxhtml"), "an escaped dot is a dot");
    }

    #[test]
    fn regex_features_inside_groups() {
        for (source, yes, no) in [
            ("/(a|bc)(d?)", &["/a", "/bc", "/ad", "/bcd"][..], &["/", "/b", "/add"][..]),
            ("/((?:ab)+)", &["/ab", "/abab"], &["/", "/aba"]),
            ("/((?=x).*)", &["/x", "/xyz"], &["/", "/yx"]),
            ("/((a*)+)", &["/", "/aaa"], &["/b"]),
            ("/(.*?)\\.js", &["/app.js", "/a/b.js", "/.js"], &["/app.css", "/appjs"]),
            ("/(.*$)", &["/", "/x"], &[]),
            // `^` is the start of the path, never after the `/`.
            ("/(^.*)", &[], &["/", "/x"]),
        ] {
            for p in yes {
                assert!(matches(source, p), "{source} should match {p}");
            }
            for p in no {
                assert!(!matches(source, p), "{source} should not match {p}");
            }
        }
    }

    #[test]
    fn refuses_what_it_would_not_match_like_vercel() {
        for source in [
            "/:path*",
            "/api/:name",
            "/(.*)?",
            "/(a)+",
            "/*",
            "/([a-z]+)",
            "/(\\d+)",
            "/(a{2})",
            "/(a",
            "/(?<name>x)",
            "/(*)",
        ] {
            assert!(compile(source).is_err(), "{source} should be refused");
        }
        let with_has = r#"{"headers":[{"source":"/(.*)","has":[{"type":"query","key":"x"}],"headers":[{"key":"X-A","value":"1"}]}]}"#;
        assert!(HeaderRules::from_vercel_json(with_has).is_err());
    }

    #[test]
    fn later_entries_replace_a_key_earlier_ones_set() {
        let json = r#"{"headers":[
            {"source":"/(.*)","headers":[{"key":"X-A","value":"all"},{"key":"X-B","value":"all"}]},
            {"source":"/special","headers":[{"key":"x-a","value":"special"}]}]}"#;
        let rules = HeaderRules::from_vercel_json(json).unwrap();
        let get = |path: &str| {
            rules.for_path(path).into_iter().map(|(k, v)| format!("{k}={}", v.to_str().unwrap())).collect::<Vec<_>>()
        };
        assert_eq!(get("/special"), ["x-a=special", "x-b=all"]);
        assert_eq!(get("/other"), ["x-a=all", "x-b=all"]);
    }

    /// The repository's vercel.json: the storefront (`/`, `/index.html`) gets the CSP that lets
    /// Stripe.js and embedded Checkout in, every other path the strict `'self'` one, each path
    /// exactly one CSP and all the other headers.
    #[test]
    fn the_shops_vercel_json_per_path() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join("vercel.json")).unwrap();
        let rules = HeaderRules::from_vercel_json(&text).unwrap();
        let others = [
            "strict-transport-security",
            "x-content-type-options",
            "referrer-policy",
            "x-frame-options",
            "permissions-policy",
        ];
        for path in [
            "/",
            "/index.html",
            "/admin.html",
            "/admin.js",
            "/success.html",
            "/cancel.html",
            "/app.js",
            "/style.css",
            "/favicon.svg",
            "/no-such-file",
            "/index.html/",
            "/index.htm",
            "/x/index.html",
            "/api/products",
        ] {
            let headers = rules.for_path(path);
            let csps: Vec<&str> = headers
                .iter()
                .filter(|(k, _)| k == "content-security-policy")
                .map(|(_, v)| v.to_str().unwrap())
                .collect();
            assert_eq!(csps.len(), 1, "{path}: {csps:?}");
            let csp = csps[0];
            let storefront = path == "/" || path == "/index.html";
            let stripe = csp.contains("script-src 'self' https://js.stripe.com")
                && csp.contains("frame-src https://js.stripe.com")
                && csp.contains("https://checkout.stripe.com");
            assert_eq!(stripe, storefront, "{path}: {csp}");
            if !storefront {
                assert!(csp.contains("script-src 'self';") && csp.contains("frame-src 'none'"), "{path}: {csp}");
            }
            assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"), "{path}: {csp}");
            for name in others {
                assert_eq!(headers.iter().filter(|(k, _)| k == name).count(), 1, "{path}: {name}");
            }
            assert_eq!(headers.len(), others.len() + 1, "{path}: {headers:?}");
        }
    }
}
