//! Reading JSON. Every reader in ward goes through here, so that the binary holds one copy
//! of serde_json's decoder per type: each reader a type is read with (`&str`, `&[u8]`, a
//! `Value`) is a whole copy of its decoding code, about 25 kB for an app's spec, and the
//! `make static` binary has 2 MiB in all.
//!
//! Bytes are checked to be UTF-8 once, as a whole, and read as text: read from bytes,
//! serde_json checks every string on its own (4% of `jlist`'s client time).

use serde::Deserialize;

/// Reads `T` from JSON bytes.
pub fn from_bytes<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(e) => Err(not_utf8(bytes, e.valid_up_to())),
    }
}

/// Reads `T` from JSON text.
pub fn from_text<'a, T: Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    serde_json::from_str(text)
}

/// serde_json's error for bytes that are not UTF-8, with where they are as it says it.
fn not_utf8(bytes: &[u8], at: usize) -> serde_json::Error {
    let before = &bytes[..at];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let column = 1 + before.len()
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
    serde::de::Error::custom(format_args!("invalid UTF-8 at line {line} column {column}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bytes_and_text_alike() {
        let v: Vec<u32> = from_bytes(b"[1, 2]").unwrap();
        assert_eq!(v, [1, 2]);
        let v: Vec<String> = from_text(r#"["é"]"#).unwrap();
        assert_eq!(v, ["é"]);
        let e = from_bytes::<Vec<u32>>(b"[1, x]").unwrap_err();
        assert!(e.to_string().contains("line 1 column 5"), "{e}");
    }

    #[test]
    fn says_where_bytes_are_not_utf8() {
        let e = from_bytes::<Vec<String>>(b"[\n  \"ab\xff\"]").unwrap_err();
        assert_eq!(e.to_string(), "invalid UTF-8 at line 2 column 6");
    }
}
