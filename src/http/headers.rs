//! Response headers kept as they arrived: the head's bytes and where each field is in them.
//!
//! Building an `http::HeaderMap` for every response (hashing, name interning, one
//! allocation per value) cost more than parsing the head itself, and a load test reads a
//! response's headers rarely. Lookups here are a linear scan with a case-insensitive
//! compare, which is faster than hashing for the dozen fields a response has.

use std::fmt;

use bytes::Bytes;

/// Where one field's name and value are in the head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub name: (u32, u32),
    pub value: (u32, u32),
}

/// A response's header fields, in the order received. Cheap to clone.
#[derive(Clone, Default)]
pub struct Headers {
    raw: Bytes,
    fields: Fields,
    /// Which of the fields the client itself acts on are present (bits of [`Notable`]),
    /// noted by the parser's pass over the fields so most responses skip three lookups.
    notable: u8,
}

/// Fields the client acts on after every response.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Notable {
    Location = 1,
    SetCookie = 2,
    ContentEncoding = 4,
}

impl Notable {
    /// The notable field `name` is, if any (any case).
    pub fn of(name: &[u8]) -> Option<Self> {
        match name.len() {
            8 if name.eq_ignore_ascii_case(b"location") => Some(Self::Location),
            10 if name.eq_ignore_ascii_case(b"set-cookie") => Some(Self::SetCookie),
            16 if name.eq_ignore_ascii_case(b"content-encoding") => Some(Self::ContentEncoding),
            _ => None,
        }
    }
}

/// A Vec, not inline storage: a response is moved a dozen times on its way to the script,
/// and a wider struct costs more in copies than the one allocation saves (callgrind).
pub(crate) type Fields = Vec<Field>;

impl Headers {
    /// `notable` holds the [`Notable`] bits of `fields`, found while parsing them.
    pub(crate) fn new(raw: Bytes, fields: Fields, notable: u8) -> Self {
        Self {
            raw,
            fields,
            notable,
        }
    }

    /// The fields of a header map (an HTTP/2 response), laid out as an HTTP/1.1 head
    /// would be, so every transport's responses read the same.
    pub(crate) fn from_map(map: &http::HeaderMap) -> Self {
        let mut raw = Vec::with_capacity(map.len() * 32);
        let mut fields = Fields::with_capacity(map.len());
        let mut notable = 0;
        for (name, value) in map {
            let name_start = raw.len() as u32;
            raw.extend_from_slice(name.as_str().as_bytes());
            let name_end = raw.len() as u32;
            raw.extend_from_slice(b": ");
            let value_start = raw.len() as u32;
            raw.extend_from_slice(value.as_bytes());
            let value_end = raw.len() as u32;
            raw.extend_from_slice(b"\r\n");
            if let Some(n) = Notable::of(name.as_str().as_bytes()) {
                notable |= n as u8;
            }
            fields.push(Field {
                name: (name_start, name_end),
                value: (value_start, value_end),
            });
        }
        Self::new(Bytes::from(raw), fields, notable)
    }

    /// Whether the response has the field `n` at all.
    pub(crate) fn has(&self, n: Notable) -> bool {
        self.notable & n as u8 != 0
    }

    fn slice(&self, (start, end): (u32, u32)) -> &[u8] {
        &self.raw[start as usize..end as usize]
    }

    /// Every field as (name as received, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|f| {
            // httparse only accepts token characters (ASCII) in names.
            let name = std::str::from_utf8(self.slice(f.name)).unwrap_or_default();
            (name, self.slice(f.value))
        })
    }

    /// Every value of the field `name` (any case).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |f| self.slice(f.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| self.slice(f.value))
    }

    /// The first value of the field `name` (any case).
    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.get_all(name).next()
    }

    /// The first value of `name`, if it is valid UTF-8.
    pub fn get_str<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(n, v)| (n, String::from_utf8_lossy(v).into_owned())),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_keep_every_value() {
        let raw = Bytes::from_static(b"Set-Cookie: a=1\r\nset-cookie: b=2\r\nX-One: 1\r\n");
        let fields = vec![
            Field {
                name: (0, 10),
                value: (12, 15),
            },
            Field {
                name: (17, 27),
                value: (29, 32),
            },
            Field {
                name: (34, 39),
                value: (41, 42),
            },
        ];
        let h = Headers::new(raw, fields, Notable::SetCookie as u8);
        assert_eq!(h.get("x-one"), Some(&b"1"[..]));
        assert_eq!(h.get_str("SET-COOKIE"), Some("a=1"));
        let all: Vec<_> = h.get_all("set-cookie").collect();
        assert_eq!(all, vec![&b"a=1"[..], &b"b=2"[..]]);
        assert_eq!(h.get("missing"), None);
        assert_eq!(h.len(), 3);
    }
}
