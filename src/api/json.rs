//! JSON bodies straight into Rhai values.
//!
//! Rhai's own serde visitor collects every object into a vector before building the map;
//! this one inserts as it parses and keeps short keys inline (no allocation), which W2
//! (`r.json().name`) measures as about a tenth fewer instructions per request. Maps and
//! arrays become `Dynamic` with `from_map`/`from_array`: the generic `From` impls rebuild
//! the collection element by element (1,150 instructions for a two-key object).

use std::fmt;

use rhai::{Array, Dynamic, Identifier, Map};
use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

/// Parses `bytes` as JSON into a Rhai value.
pub fn parse(bytes: &[u8]) -> serde_json::Result<Dynamic> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = ValueSeed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
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
    }
}
