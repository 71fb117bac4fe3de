//! Parsing of Stripe-style `application/x-www-form-urlencoded` bodies with nested keys
//! (`a[b][c]=v`, `line_items[0][price]=...`, `expand[]=x`).

use serde_json::{Map, Value};

/// Decodes a urlencoded body or query string into ordered `(key, value)` pairs.
pub fn parse_pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

/// Splits `a[b][c]` into `["a", "b", "c"]`; `None` when the key is malformed.
pub fn split_key(key: &str) -> Option<Vec<String>> {
    let Some(i) = key.find('[') else {
        return if key.is_empty() { None } else { Some(vec![key.to_string()]) };
    };
    let (head, mut rest) = (&key[..i], &key[i..]);
    if head.is_empty() {
        return None;
    }
    let mut segs = vec![head.to_string()];
    while !rest.is_empty() {
        if !rest.starts_with('[') {
            return None;
        }
        let end = rest.find(']')?;
        segs.push(rest[1..end].to_string());
        rest = &rest[end + 1..];
    }
    Some(segs)
}

fn insert(node: &mut Value, segs: &[String], val: &str) -> Result<(), ()> {
    let (first, rest) = segs.split_first().ok_or(())?;
    if first.is_empty() {
        if node.is_null() {
            *node = Value::Array(vec![]);
        }
        let arr = node.as_array_mut().ok_or(())?;
        if rest.is_empty() {
            arr.push(Value::String(val.to_string()));
        } else {
            let mut child = Value::Null;
            insert(&mut child, rest, val)?;
            arr.push(child);
        }
        return Ok(());
    }
    if node.is_null() {
        *node = Value::Object(Map::new());
    }
    let map = node.as_object_mut().ok_or(())?;
    if rest.is_empty() {
        if map.get(first).is_some_and(|v| !v.is_string()) {
            return Err(());
        }
        map.insert(first.clone(), Value::String(val.to_string()));
        Ok(())
    } else {
        let child = map.entry(first.clone()).or_insert(Value::Null);
        if child.is_string() {
            return Err(());
        }
        insert(child, rest, val)
    }
}

/// Builds a nested JSON tree (strings at the leaves) from ordered pairs.
/// On a structural conflict (`a=1&a[b]=2`) returns the offending key as `Err`.
pub fn to_tree(pairs: &[(String, String)]) -> Result<Value, String> {
    let mut root = Value::Object(Map::new());
    for (k, v) in pairs {
        let segs = split_key(k).ok_or_else(|| k.clone())?;
        insert(&mut root, &segs, v).map_err(|_| k.clone())?;
    }
    Ok(root)
}

/// Views a node as a list: a JSON array, or an object whose keys are all integers
/// (sorted numerically). Returns `(index label, value)` pairs.
pub fn as_list(v: &Value) -> Option<Vec<(String, &Value)>> {
    match v {
        Value::Array(a) => Some(a.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect()),
        Value::Object(m) => {
            let mut out = Vec::with_capacity(m.len());
            for (k, v) in m {
                let n: usize = k.parse().ok()?;
                out.push((n, k.clone(), v));
            }
            out.sort_by_key(|x| x.0);
            Some(out.into_iter().map(|(_, k, v)| (k, v)).collect())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys() {
        let pairs = parse_pairs(b"mode=payment&line_items[0][price_data][currency]=usd&line_items[0][quantity]=2&expand[]=line_items&metadata[a]=b");
        let t = to_tree(&pairs).unwrap();
        assert_eq!(t["line_items"]["0"]["price_data"]["currency"], "usd");
        assert_eq!(t["expand"][0], "line_items");
        assert_eq!(as_list(&t["line_items"]).unwrap().len(), 1);
        assert!(split_key("a[b").is_none());
        assert!(to_tree(&parse_pairs(b"a=1&a[b]=2")).is_err());
    }
}
