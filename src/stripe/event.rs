//! A webhook Event read in one pass over the raw bytes, into borrowed fields.
//!
//! [`parse`] walks the whole document once: every byte is checked as JSON (a syntax error is
//! [`NotJson`], the delivery is refused like the SDKs refuse it), while the fields the shop reads
//! are picked out on the way without building a tree. A document that is JSON but not shaped
//! like an Event (missing or mistyped `id`, `type`, `livemode`, `data`, or a read field given
//! twice) is [`Shape`]: authentic, so acknowledged and ignored. Strings borrow from the body
//! unless they contain escapes. The same reader takes a [`serde_json::Value`] (reconciliation
//! lists events as JSON) through [`Event::from_value`].

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// A webhook Event: the envelope fields and the few fields of `data.object` the shop reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// `evt_...`.
    pub id: Cow<'a, str>,
    /// e.g. `checkout.session.completed`.
    pub kind: Cow<'a, str>,
    /// Live or test mode.
    pub livemode: bool,
    /// The fields read from `data.object`.
    pub object: EventObject<'a>,
}

/// The fields of `data.object` the shop reads; `None` when absent or not a string (a
/// `data.object` that is not a JSON object has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventObject<'a> {
    /// The object's id (`cs_...`, `ch_...`, `re_...`, `du_...`).
    pub id: Option<Cow<'a, str>>,
    /// The PaymentIntent it belongs to.
    pub payment_intent: Option<Cow<'a, str>>,
    /// The Charge it belongs to (refunds, disputes).
    pub charge: Option<Cow<'a, str>>,
}

/// The body is not one complete JSON document (the SDKs refuse it too).
#[derive(Debug)]
pub struct NotJson(pub serde_json::Error);

impl fmt::Display for NotJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not JSON: {}", self.0)
    }
}

impl std::error::Error for NotJson {}

/// Valid JSON that is not shaped like an Event: which field is missing, mistyped or repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape(pub &'static str);

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Reads `body` once: [`NotJson`] for a syntax error anywhere (trailing bytes included),
/// otherwise the Event or why it is not one.
pub fn parse(body: &[u8]) -> Result<Result<Event<'_>, Shape>, NotJson> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let envelope = de.deserialize_any(EnvelopeVisitor).map_err(NotJson)?;
    de.end().map_err(NotJson)?;
    Ok(envelope.into_event())
}

impl<'a> Event<'a> {
    /// Reads an Event listed by the API (already JSON), borrowing its strings.
    pub fn from_value(value: &'a Value) -> Result<Event<'a>, Shape> {
        // A `Value` is valid JSON by construction and the visitors never fail on data,
        // so the only error left is a shape.
        value.deserialize_any(EnvelopeVisitor).map_err(|_| Shape("not an event")).and_then(Envelope::into_event)
    }
}

/// What the walk found, before the shape is judged.
#[derive(Default)]
struct Envelope<'a> {
    object: bool,
    id: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    livemode: Option<bool>,
    data: Option<EventObject<'a>>,
    repeated: Option<&'static str>,
}

impl<'a> Envelope<'a> {
    fn into_event(self) -> Result<Event<'a>, Shape> {
        if !self.object {
            return Err(Shape("not a JSON object"));
        }
        if let Some(field) = self.repeated {
            return Err(Shape(field));
        }
        Ok(Event {
            id: self.id.ok_or(Shape("`id` missing or not a string"))?,
            kind: self.kind.ok_or(Shape("`type` missing or not a string"))?,
            livemode: self.livemode.ok_or(Shape("`livemode` missing or not a boolean"))?,
            object: self.data.ok_or(Shape("`data` missing or not an object"))?,
        })
    }
}

/// Implements the `visit_*` methods of every JSON kind a visitor does not want, consuming
/// nested arrays and objects to the end (so their syntax is checked) and answering `$none`.
macro_rules! other_kinds {
    ($none:expr; $($skip:ident)*) => {
        other_kinds!(@each $none; $($skip)*);
    };
    (@each $none:expr; ) => {};
    (@each $none:expr; bool $($rest:ident)*) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> { Ok($none) }
        other_kinds!(@each $none; $($rest)*);
    };
    (@each $none:expr; num $($rest:ident)*) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> { Ok($none) }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> { Ok($none) }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> { Ok($none) }
        other_kinds!(@each $none; $($rest)*);
    };
    (@each $none:expr; str $($rest:ident)*) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> { Ok($none) }
        other_kinds!(@each $none; $($rest)*);
    };
    (@each $none:expr; unit $($rest:ident)*) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> { Ok($none) }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> { Ok($none) }
        other_kinds!(@each $none; $($rest)*);
    };
    (@each $none:expr; seq $($rest:ident)*) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($none)
        }
        other_kinds!(@each $none; $($rest)*);
    };
    (@each $none:expr; map $($rest:ident)*) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($none)
        }
        other_kinds!(@each $none; $($rest)*);
    };
}

/// A key, compared without keeping it.
enum Key {
    Id,
    Type,
    Livemode,
    Data,
    Object,
    PaymentIntent,
    Charge,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "id" => Key::Id,
                    "type" => Key::Type,
                    "livemode" => Key::Livemode,
                    "data" => Key::Data,
                    "object" => Key::Object,
                    "payment_intent" => Key::PaymentIntent,
                    "charge" => Key::Charge,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A string value (borrowed when it has no escapes), `None` for any other JSON value.
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            other_kinds!(Text(None); bool num unit seq map);
        }
        d.deserialize_any(TextVisitor)
    }
}

/// A boolean value, `None` for any other JSON value.
struct Flag(Option<bool>);

impl<'de> de::Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FlagVisitor;
        impl<'de> Visitor<'de> for FlagVisitor {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(Some(v)))
            }
            other_kinds!(Flag(None); num str unit seq map);
        }
        d.deserialize_any(FlagVisitor)
    }
}

/// `data`: `Some` when it is an object (its `object` read as [`Fields`]), `None` otherwise;
/// the `&'static str` names a repeated key.
struct Data<'a>(Option<EventObject<'a>>, Option<&'static str>);

impl<'de> de::Deserialize<'de> for Data<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DataVisitor;
        impl<'de> Visitor<'de> for DataVisitor {
            type Value = Data<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut object, mut repeated) = (None, None);
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Object => {
                            let Fields(fields, rep) = map.next_value()?;
                            repeated = repeated.or(rep);
                            if object.replace(fields).is_some() {
                                repeated = Some("`data.object` given twice");
                            }
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Data(Some(object.unwrap_or_default()), repeated))
            }
            other_kinds!(Data(None, None); bool num str unit seq);
        }
        d.deserialize_any(DataVisitor)
    }
}

/// `data.object`'s read fields (all `None` when it is not an object); names a repeated key.
struct Fields<'a>(EventObject<'a>, Option<&'static str>);

impl<'de> de::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut o = EventObject::default();
                let mut seen = [false; 3];
                let mut repeated = None;
                while let Some(key) = map.next_key::<Key>()? {
                    let (slot, i, name) = match key {
                        Key::Id => (&mut o.id, 0, "`data.object.id` given twice"),
                        Key::PaymentIntent => (&mut o.payment_intent, 1, "`data.object.payment_intent` given twice"),
                        Key::Charge => (&mut o.charge, 2, "`data.object.charge` given twice"),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    let Text(value) = map.next_value()?;
                    if std::mem::replace(&mut seen[i], true) {
                        repeated = Some(name);
                    }
                    *slot = value;
                }
                Ok(Fields(o, repeated))
            }
            other_kinds!(Fields(EventObject::default(), None); bool num str unit seq);
        }
        d.deserialize_any(FieldsVisitor)
    }
}

/// The top level: an object is walked for the envelope fields, anything else is consumed.
struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut e = Envelope { object: true, ..Envelope::default() };
        let mut seen = [false; 4];
        while let Some(key) = map.next_key::<Key>()? {
            let (i, name) = match key {
                Key::Id => {
                    e.id = map.next_value::<Text>()?.0;
                    (0, "`id` given twice")
                }
                Key::Type => {
                    e.kind = map.next_value::<Text>()?.0;
                    (1, "`type` given twice")
                }
                Key::Livemode => {
                    e.livemode = map.next_value::<Flag>()?.0;
                    (2, "`livemode` given twice")
                }
                Key::Data => {
                    let Data(data, repeated) = map.next_value()?;
                    e.data = data;
                    e.repeated = e.repeated.or(repeated);
                    (3, "`data` given twice")
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if std::mem::replace(&mut seen[i], true) {
                e.repeated = Some(name);
            }
        }
        Ok(e)
    }

    other_kinds!(Envelope::default(); bool num str unit seq);
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"id":"evt_1","object":"event","type":"charge.refunded","livemode":false,
        "data":{"object":{"id":"ch_1","object":"charge","payment_intent":"pi_1","charge":null,
        "metadata":{"id":"not this one"},"refunds":[{"id":"re_1"}]},"previous_attributes":{"id":1}}}"#;

    #[test]
    fn reads_the_envelope_and_the_object_fields_borrowed() {
        let e = parse(EVENT.as_bytes()).unwrap().unwrap();
        assert_eq!((&*e.id, &*e.kind, e.livemode), ("evt_1", "charge.refunded", false));
        assert_eq!(e.object.id.as_deref(), Some("ch_1"));
        assert_eq!(e.object.payment_intent.as_deref(), Some("pi_1"));
        assert_eq!(e.object.charge, None);
        assert!(matches!(e.id, Cow::Borrowed(_)));
        let value: Value = serde_json::from_str(EVENT).unwrap();
        assert_eq!(Event::from_value(&value).unwrap(), e);
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let e = parse(br#"{"id":"evt_\u0031","type":"a","livemode":true,"data":{"object":"x"}}"#).unwrap().unwrap();
        assert_eq!(e.id, "evt_1");
        assert_eq!(e.object, EventObject::default());
    }

    #[test]
    fn syntax_errors_anywhere_are_not_json() {
        for body in [
            &b""[..],
            b"{",
            b"{\"id\":1,",
            b"{\"id\":1} x",
            b"{\"id\":\"evt\",\"type\":\"a\",\"livemode\":false,\"data\":{}} {}",
            b"[1,2,]",
            b"{\"data\":{\"object\":{\"x\":[1,}}}",
            b"{\"id\":5, nonsense}",
            b"{\"a\":01}",
        ] {
            assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn shape_errors_are_json_but_not_events() {
        for body in [
            r#"[1,2,3]"#,
            r#""evt""#,
            r#"{"unexpected":"shape"}"#,
            r#"{"id":5,"type":"a","livemode":false,"data":{}}"#,
            r#"{"id":"evt","type":"a","livemode":"false","data":{}}"#,
            r#"{"id":"evt","type":"a","livemode":false,"data":[]}"#,
            r#"{"id":"evt","type":"a","type":"b","livemode":false,"data":{}}"#,
            r#"{"id":"evt","type":"a","livemode":false,"data":{"object":{"id":"x","id":"y"}}}"#,
        ] {
            assert!(parse(body.as_bytes()).unwrap().is_err(), "{body}");
        }
    }

    #[test]
    fn a_missing_object_reads_as_empty() {
        let e = parse(br#"{"id":"evt","type":"a","livemode":false,"data":{}}"#).unwrap().unwrap();
        assert_eq!(e.object, EventObject::default());
    }
}
