//! JSON bodies straight into Rhai values: the whole document (`r.json()`), or only the
//! value a GJSON path selects (`r.json("items.#")`, k6's `r.json(selector)`).
//!
//! Rhai's own serde visitor collects every object into a vector before building the map;
//! this one inserts as it parses and keeps short keys inline (no allocation), which W2
//! (`r.json().name`) measures as about a tenth fewer instructions per request. Maps and
//! arrays become `Dynamic` with `from_map`/`from_array`: the generic `From` impls rebuild
//! the collection element by element (1,150 instructions for a two-key object).
//!
//! A selector converts only what it selects: most of a document's cost is building the
//! maps, strings and arrays the script never reads (W3's 2 KB answer: see
//! docs/performance.md).

use std::fmt;

use rhai::{Array, Dynamic, Identifier, Map};
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

/// Why a body could not be read as JSON (the message goes to the failures table).
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("invalid JSON: body is not UTF-8 ({0})")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error("invalid JSON: {0}")]
    Syntax(#[from] serde_json::Error),
}

/// Parses `bytes` as JSON into a Rhai value.
///
/// The body is checked as UTF-8 once, up front, and parsed as a `str`: serde_json then
/// skips its check of each string (JSON is UTF-8 by definition, RFC 8259 §8.1).
pub fn parse(bytes: &[u8]) -> Result<Dynamic, JsonError> {
    parse_str(std::str::from_utf8(bytes)?)
}

fn parse_str(text: &str) -> Result<Dynamic, JsonError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = ValueSeed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The body as JSON text, if it is valid JSON: what `select` needs first.
///
/// GJSON alone reads what it can of a broken document, so a truncated or garbled answer
/// could yield a value; `r.json(path)` must fail such a body as `r.json()` does. The check
/// is serde_json skipping every value (no allocation), so "valid" means what it means for
/// `parse`: about 2.9 µs for W3's 2 KB answer on the bench VM, where `gjson::valid` takes
/// 3.4 µs and a full `parse` several times more.
pub fn validate(bytes: &[u8]) -> Result<&str, JsonError> {
    let text = std::str::from_utf8(bytes)?;
    let mut de = serde_json::Deserializer::from_str(text);
    serde::de::IgnoredAny::deserialize(&mut de)?;
    de.end()?;
    Ok(text)
}

/// The value at a GJSON `path` (the syntax k6's `r.json(selector)` takes) in `validate`d
/// JSON text, converted to a Rhai value; `()` when nothing matches. Only the selected
/// value is converted.
pub fn select(text: &str, path: &str) -> Result<Dynamic, JsonError> {
    let value = gjson::get(text, path);
    Ok(match value.kind() {
        _ if !value.exists() => Dynamic::UNIT,
        gjson::Kind::Null => Dynamic::UNIT,
        gjson::Kind::True => true.into(),
        gjson::Kind::False => false.into(),
        gjson::Kind::String => value.str().into(),
        gjson::Kind::Number => number(value.json()),
        gjson::Kind::Array | gjson::Kind::Object => parse_str(value.json())?,
    })
}

/// A JSON number as `parse` reads it: an integer when it is written as one and fits in
/// an `i64`, otherwise a float.
fn number(raw: &str) -> Dynamic {
    match raw.parse::<i64>() {
        Ok(i) => i.into(),
        Err(_) => raw.parse::<f64>().map_or(Dynamic::UNIT, Dynamic::from),
    }
}

struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Dynamic;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Dynamic, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Dynamic;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: Error>(self) -> Result<Dynamic, E> {
        Ok(Dynamic::UNIT)
    }
    fn visit_bool<E: Error>(self, v: bool) -> Result<Dynamic, E> {
        Ok(v.into())
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<Dynamic, E> {
        Ok(v.into())
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<Dynamic, E> {
        Ok(i64::try_from(v).map_or_else(|_| Dynamic::from(v as f64), Dynamic::from))
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<Dynamic, E> {
        Ok(v.into())
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Dynamic, E> {
        Ok(v.into())
    }
    fn visit_string<E: Error>(self, v: String) -> Result<Dynamic, E> {
        Ok(v.into())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dynamic, A::Error> {
        let mut items = Array::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(ValueSeed)? {
            items.push(v);
        }
        Ok(Dynamic::from_array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Dynamic, A::Error> {
        let mut map = Map::new();
        while let Some(key) = entries.next_key_seed(KeySeed)? {
            map.insert(key, entries.next_value_seed(ValueSeed)?);
        }
        Ok(Dynamic::from_map(map))
    }
}

/// Object keys as Rhai identifiers (inline when short).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Identifier;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Identifier, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Identifier;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Identifier, E> {
        Ok(v.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_json_kind() {
        let v =
            parse(br#"{"a":1,"b":[true,null,2.5,"x"],"c":{"d":18446744073709551615}}"#).unwrap();
        let m = v.cast::<Map>();
        assert_eq!(m["a"].as_int().unwrap(), 1);
        let b = m["b"].clone().into_array().unwrap();
        assert!(b[0].as_bool().unwrap() && b[1].is_unit());
        assert_eq!(b[2].as_float().unwrap(), 2.5);
        assert_eq!(b[3].clone().into_string().unwrap(), "x");
        let c = m["c"].clone().cast::<Map>();
        assert!(c["d"].as_float().unwrap() > 1e19);
        assert!(parse(b"{\"a\":1} trailing").is_err());
        assert!(parse(b"not json").is_err());
        assert!(matches!(parse(b"\"\xff\""), Err(JsonError::NotUtf8(_))));
    }

    #[test]
    fn selects_only_the_value_at_a_path() {
        let text = validate(br#"{"a":{"b":[10,20.5,"s",null,true]},"n":-3}"#).unwrap();
        assert_eq!(select(text, "n").unwrap().as_int().unwrap(), -3);
        assert_eq!(select(text, "a.b.#").unwrap().as_int().unwrap(), 5);
        assert_eq!(select(text, "a.b.1").unwrap().as_float().unwrap(), 20.5);
        assert_eq!(select(text, "a.b.2").unwrap().into_string().unwrap(), "s");
        assert!(select(text, "a.b.3").unwrap().is_unit());
        assert!(select(text, "a.b.4").unwrap().as_bool().unwrap());
        assert!(select(text, "missing").unwrap().is_unit());
        let b = select(text, "a.b").unwrap().into_array().unwrap();
        assert_eq!(b.len(), 5);
        assert!(select(text, "a").unwrap().is_map());
    }

    #[test]
    fn validation_refuses_what_a_selector_alone_would_read() {
        let err = validate(br#"{"name":"x","items":["#).unwrap_err();
        assert!(err.to_string().starts_with("invalid JSON: "), "{err}");
        assert!(validate(b"{} {}").is_err());
        assert!(validate(b"\"\xff\"").is_err());
    }
}
