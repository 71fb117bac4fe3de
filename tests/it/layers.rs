//! The layers of `src/` read top to bottom (the floors in `src/lib.rs`'s doc): no module
//! imports one on a floor above its own, and no files import each other in a circle. Read from
//! the source, comments and unit tests left out.

use std::collections::{BTreeMap, BTreeSet};

/// The floors, top first: a module may use its own floor and those below.
const FLOORS: &[&[&str]] = &[
    &["routes", "vercel"],
    &[
        "events",
        "fulfillment",
        "after_payment",
        "hooks",
        "email",
        "reconcile",
        "owner_actions",
        "products",
        "doctor",
        "cart",
        "discount",
        "session",
        "stock",
    ],
    &["app"],
    &["order", "store", "ratelimit", "refusals"],
    &["stripe", "signature", "catalog", "config", "http", "log", "clock"],
];

/// The crate-local modules each top-level module of `src/` uses: `(module, file) -> used`.
fn imports() -> BTreeMap<(String, String), BTreeSet<String>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.file_name().is_some_and(|f| f == "lib.rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy().to_string();
            let module = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            let mut used = BTreeSet::new();
            // Comments out, then one text, so a `use crate::{...}` group rustfmt spreads over
            // lines is read whole.
            let code: String = code.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join(" ");
            {
                let line = code.as_str();
                for (i, _) in line.match_indices("crate::") {
                    let rest = &line[i + "crate::".len()..];
                    if let Some(list) = rest.strip_prefix('{') {
                        let group = list.split('}').next().unwrap();
                        used.extend(group.split(',').map(|p| p.trim().split("::").next().unwrap().to_string()));
                    } else {
                        used.insert(rest.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap().to_string());
                    }
                }
            }
            used.retain(|m| !m.is_empty() && *m != module);
            out.insert((module, rel), used);
        }
    }
    out
}

fn floor(module: &str) -> usize {
    FLOORS.iter().position(|f| f.contains(&module)).unwrap_or_else(|| panic!("{module} is on no floor of FLOORS"))
}

#[test]
fn no_module_imports_one_above_it() {
    let mut wrong = Vec::new();
    for ((module, file), used) in imports() {
        for u in used {
            if floor(&u) < floor(&module) {
                wrong.push(format!("{file} uses {u}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports from a higher floor:\n{}", wrong.join("\n"));
}

#[test]
fn no_circle_of_imports_among_modules() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((module, _), used) in imports() {
        graph.entry(module).or_default().extend(used);
    }
    // Depth-first search for a back edge; the path to it is the circle.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            return Some(path[i..].iter().cloned().chain([m.to_string()]).collect());
        }
        if !done.insert(m.to_string()) {
            return None;
        }
        path.push(m.to_string());
        for next in graph.get(m).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(circle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("a circle of imports: {}", circle.join(" -> "));
        }
    }
}
