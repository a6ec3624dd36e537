//! Enums tagged by a field inside the object, `{"req": "start", "items": […]}`, read
//! without buffering.
//!
//! serde's own `#[serde(tag = "…")]` reads each such object into a generic tree first (it
//! cannot know the tag comes first), then reads every variant again from that tree: a
//! second copy of the decoding code of everything a request or reply holds, 140 kB of the
//! `make static` binary, and a detour for every request. ward writes the tag first, as
//! serde does, so reading can rely on it.
//!
//! An enum derives serde's (default) externally tagged code as inherent functions with
//! `#[serde(remote = "Self")]`, and its `Serialize`/`Deserialize` impls hand them a
//! [`Ser`] or [`De`] that turns `{"start": {…}}` into `{"req": "start", …}` and back. Only
//! unit and struct variants are supported; the other kinds are errors.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, IntoDeserializer, MapAccess, Visitor};
use serde::ser::{self, Impossible, SerializeMap};

/// A deserializer that reads an enum from an object whose first field is `tag`.
pub struct De<D> {
    pub inner: D,
    pub tag: &'static str,
}

impl<'de, D: de::Deserializer<'de>> de::Deserializer<'de> for De<D> {
    type Error = D::Error;

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(Tagged {
            visitor,
            tag: self.tag,
        })
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

/// Reads the tag, then hands the rest of the object to the variant.
struct Tagged<V> {
    visitor: V,
    tag: &'static str,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Tagged<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object whose first field is `{}`", self.tag)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V::Value, A::Error> {
        match map.next_key::<String>()? {
            Some(k) if k == self.tag => {}
            Some(k) => {
                return Err(de::Error::custom(format_args!(
                    "expected `{}` as the first field, found `{k}`",
                    self.tag
                )));
            }
            None => return Err(de::Error::missing_field(self.tag)),
        }
        let variant: String = map.next_value()?;
        self.visitor.visit_enum(Variant { variant, map })
    }
}

struct Variant<A> {
    variant: String,
    map: A,
}

impl<'de, A: MapAccess<'de>> de::EnumAccess<'de> for Variant<A> {
    type Error = A::Error;
    type Variant = Rest<A>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Rest<A>), A::Error> {
        let v = seed.deserialize(self.variant.into_deserializer())?;
        Ok((v, Rest(self.map)))
    }
}

/// The object's other fields: the variant's.
struct Rest<A>(A);

impl<'de, A: MapAccess<'de>> de::VariantAccess<'de> for Rest<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        // Fields a unit variant does not have are ignored, as serde's own tagged enums do.
        while self.0.next_key::<IgnoredAny>()?.is_some() {
            self.0.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, _: S) -> Result<S::Value, A::Error> {
        Err(de::Error::custom(
            "tagfirst: newtype variants are not supported",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom(
            "tagfirst: tuple variants are not supported",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.0)
    }
}

/// A serializer that writes an enum as an object whose first field is `tag`.
pub struct Ser<S> {
    pub inner: S,
    pub tag: &'static str,
}

fn only_enums<E: ser::Error>() -> E {
    E::custom("tagfirst: only unit and struct variants are supported")
}

/// The fields of a struct variant, after the tag.
pub struct Fields<M>(M);

impl<M: SerializeMap> ser::SerializeStructVariant for Fields<M> {
    type Ok = M::Ok;
    type Error = M::Error;

    fn serialize_field<T: ?Sized + ser::Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), M::Error> {
        self.0.serialize_entry(key, value)
    }

    fn end(self) -> Result<M::Ok, M::Error> {
        self.0.end()
    }
}

impl<S: ser::Serializer> ser::Serializer for Ser<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = Impossible<S::Ok, S::Error>;
    type SerializeStructVariant = Fields<S::SerializeMap>;

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> std::result::Result<S::Ok, S::Error> {
        let mut m = self.inner.serialize_map(Some(1))?;
        m.serialize_entry(self.tag, variant)?;
        m.end()
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Fields<S::SerializeMap>, S::Error> {
        let mut m = self.inner.serialize_map(Some(len + 1))?;
        m.serialize_entry(self.tag, variant)?;
        Ok(Fields(m))
    }

    fn serialize_bool(self, _: bool) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_i8(self, _: i8) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_i16(self, _: i16) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_i32(self, _: i32) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_i64(self, _: i64) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_u8(self, _: u8) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_u16(self, _: u16) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_u32(self, _: u32) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_u64(self, _: u64) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_f32(self, _: f32) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_f64(self, _: f64) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_char(self, _: char) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_str(self, _: &str) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_bytes(self, _: &[u8]) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_none(self) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_some<T: ?Sized + ser::Serialize>(
        self,
        _: &T,
    ) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_unit(self) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_unit_struct(self, _: &'static str) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_newtype_struct<T: ?Sized + ser::Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_newtype_variant<T: ?Sized + ser::Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> std::result::Result<S::Ok, S::Error> {
        Err(only_enums())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Err(only_enums())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, S::Error> {
        Err(only_enums())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Err(only_enums())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        Err(only_enums())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Err(only_enums())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        Err(only_enums())
    }
}

/// `Serialize` and `Deserialize` for an enum that derives them with
/// `#[serde(remote = "Self")]`, tagged by the field `$tag`.
macro_rules! tag_first {
    ($ty:ty, $tag:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                <$ty>::serialize(
                    self,
                    $crate::tagfirst::Ser {
                        inner: s,
                        tag: $tag,
                    },
                )
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                <$ty>::deserialize($crate::tagfirst::De {
                    inner: d,
                    tag: $tag,
                })
            }
        }
    };
}
pub(crate) use tag_first;

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(remote = "Self", rename_all = "snake_case")]
    enum Msg {
        Ping,
        Start {
            items: Vec<u32>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            cwd: Option<String>,
        },
    }
    crate::tagfirst::tag_first!(Msg, "req");

    /// The same enum as serde writes and reads it: the wire format must not change.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(tag = "req", rename_all = "snake_case")]
    enum Serdes {
        Ping,
        Start {
            items: Vec<u32>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            cwd: Option<String>,
        },
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Outer {
        m: Msg,
        n: u8,
    }

    fn read(s: &str) -> Result<Msg, String> {
        serde_json::from_str(s).map_err(|e| e.to_string())
    }

    #[test]
    fn writes_what_serde_writes() {
        let cases = [
            (Msg::Ping, Serdes::Ping),
            (
                Msg::Start {
                    items: vec![1, 2],
                    cwd: None,
                },
                Serdes::Start {
                    items: vec![1, 2],
                    cwd: None,
                },
            ),
            (
                Msg::Start {
                    items: vec![],
                    cwd: Some("/".into()),
                },
                Serdes::Start {
                    items: vec![],
                    cwd: Some("/".into()),
                },
            ),
        ];
        for (ours, theirs) in cases {
            let text = serde_json::to_string(&ours).unwrap();
            assert_eq!(text, serde_json::to_string(&theirs).unwrap());
            assert_eq!(read(&text).unwrap(), ours);
            let pretty = serde_json::to_string_pretty(&ours).unwrap();
            assert_eq!(read(&pretty).unwrap(), ours);
        }
        assert_eq!(
            serde_json::to_string(&Msg::Start {
                items: vec![3],
                cwd: None
            })
            .unwrap(),
            r#"{"req":"start","items":[3]}"#
        );
    }

    #[test]
    fn reads_nested_and_ignores_extra_fields_of_a_unit_variant() {
        let o = Outer {
            m: Msg::Start {
                items: vec![7],
                cwd: None,
            },
            n: 1,
        };
        let text = serde_json::to_string(&o).unwrap();
        assert_eq!(text, r#"{"m":{"req":"start","items":[7]},"n":1}"#);
        assert_eq!(serde_json::from_str::<Outer>(&text).unwrap(), o);
        assert_eq!(
            read(r#"{"req":"ping","extra":[1,{"a":2}]}"#).unwrap(),
            Msg::Ping
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let cases = [
            (
                r#"{"items":[1],"req":"start"}"#,
                "expected `req` as the first field",
            ),
            (r#"{}"#, "missing field `req`"),
            (r#"{"req":"nope"}"#, "unknown variant `nope`"),
            (r#"{"req":7}"#, "invalid type: integer `7`"),
            (r#"[1]"#, "an object whose first field is `req`"),
            (r#"{"req":"start"}"#, "missing field `items`"),
            (
                r#"{"req":"start","items":[1],"items":[2]}"#,
                "duplicate field `items`",
            ),
        ];
        for (text, want) in cases {
            let e = read(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
