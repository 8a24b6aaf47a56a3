//! A project file's document as one kind of value, whatever its format. Each format's parser
//! reads the text into it (syntax errors keep that parser's position), and only this value is
//! then read into pm's types: one copy of that code in the binary instead of one per format.
//! The value is YAML's, whose mappings keep the file's order (translators list in that order).

use serde::de::{self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde_yaml::{Mapping, Number, Value};
use std::fmt;

/// A document whose mappings never give a key twice: TOML and YAML forbid it, and a JSON
/// parser alone would keep the last value without a word.
pub(crate) struct Document(pub Value);

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Node).map(Document)
    }
}

struct Node;

impl<'de> Visitor<'de> for Node {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(Number::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(Node)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(Document(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Sequence(items))
    }

    /// A YAML tag (`ready: !log up`) reads as the mapping `{log: up}`, the way enums are written.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, variant): (String, _) = data.variant()?;
        let Document(value) = variant.newtype_variant()?;
        Ok(Value::Mapping(Mapping::from_iter([(Value::String(tag), value)])))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Mapping::new();
        while let Some(key) = map.next_key::<String>()? {
            let key = Value::String(key);
            if out.contains_key(&key) {
                let key = key.as_str().unwrap_or_default();
                return Err(de::Error::custom(format!("the key `{key}` is given twice")));
            }
            let Document(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Mapping(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_an_error_in_every_format() {
        let json = serde_json::from_str::<Document>(r#"{"a": 1, "a": 2}"#).err().expect("an error").to_string();
        assert!(json.contains("the key `a` is given twice"), "{json}");
        let yaml = serde_yaml::from_str::<Document>("a: 1\na: 2\n").err().expect("an error").to_string();
        assert!(yaml.contains("`a`"), "{yaml}");
        assert!(toml::from_str::<Document>("a = 1\na = 2\n").is_err());
    }

    #[test]
    fn a_yaml_tag_reads_as_a_one_key_mapping() {
        let Document(v) = serde_yaml::from_str("ready: !log up\n").expect("parses");
        let want: Value = serde_yaml::from_str("ready: {log: up}\n").expect("parses");
        assert_eq!(v, want);
    }

    #[test]
    fn values_keep_their_types() {
        let Document(v) =
            serde_json::from_str(r#"{"z": [1, -2, 1.5, true, null, "x"], "b": {"c": "d"}}"#).expect("parses");
        let want: Value = serde_yaml::from_str("z: [1, -2, 1.5, true, null, x]\nb: {c: d}\n").expect("parses");
        assert_eq!(v, want);
        let keys: Vec<_> = v.as_mapping().expect("a mapping").keys().filter_map(Value::as_str).collect();
        assert_eq!(keys, ["z", "b"], "the file's order");
    }
}
