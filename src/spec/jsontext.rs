//! JSON text as `JSON.stringify` writes it, straight into a `String`: keys in the order
//! given, numbers as JavaScript's doubles, strings escaped as serde_json and node escape
//! them. For jlist (spec/pm2record.rs), whose 100 apps are ~0.5 MB of text.
//!
//! Pure: values in, text out.

use serde_json::Value;

/// A comma before every key but the first, then the key and its colon.
pub fn write_key(k: &str, first: &mut bool, out: &mut String) {
    if !*first {
        out.push(',');
    }
    *first = false;
    write_str(k, out);
    out.push(':');
}

pub fn write_object<'v, K: AsRef<str> + 'v, V: ?Sized + 'v>(
    entries: impl Iterator<Item = (K, &'v V)>,
    out: &mut String,
    each: impl Fn(&V, &mut String),
) {
    out.push('{');
    let mut first = true;
    for (k, x) in entries {
        write_key(k.as_ref(), &mut first, out);
        each(x, out);
    }
    out.push('}');
}

pub fn write_array<'v, V: ?Sized + 'v>(
    items: impl Iterator<Item = &'v V>,
    out: &mut String,
    each: impl Fn(&V, &mut String),
) {
    out.push('[');
    for (i, x) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(x, out);
    }
    out.push(']');
}

/// Any JSON value's text, keys in the map's order.
pub fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_num(n.as_f64().unwrap_or(0.0), out),
        Value::String(s) => write_str(s, out),
        Value::Array(a) => write_array(a.iter(), out, write_value),
        Value::Object(m) => write_object(m.iter(), out, write_value),
    }
}

/// A number as ward's jlist has always printed it: every number is a double, as in
/// JavaScript, printed as an integer while it is one below 9e15, else as serde_json
/// prints a double (u64::MAX shows rounded, as in pm2, but as `1.8446744073709552e+19`
/// where JavaScript writes every digit).
pub fn write_num(x: f64, out: &mut String) {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        write_int(x as i64, out);
    } else {
        match serde_json::Number::from_f64(x) {
            Some(n) => {
                use std::fmt::Write;
                let _ = write!(out, "{n}");
            }
            None => out.push_str("null"),
        }
    }
}

/// Decimal digits without the formatting machinery (a jlist of 100 apps prints thousands
/// of small numbers).
fn write_int(n: i64, out: &mut String) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut u = n.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    out.push_str(std::str::from_utf8(&buf[at..]).unwrap_or_default());
}

/// A JSON string literal, escaped as `JSON.stringify` (and serde_json) escape it: `"`, `\`
/// and control characters. Runs of plain bytes are copied whole, found eight bytes at a
/// time (most of jlist's text is such runs).
pub fn write_str(t: &str, out: &mut String) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether any byte of `w` is below 0x20, `"` or `\`: a byte's high bit is set by the
    // subtraction only where it was below the subtrahend (or zero after the xor).
    let special = |w: u64| {
        let below = w.wrapping_sub(ONES * 0x20);
        let quote = (w ^ (ONES * b'"' as u64)).wrapping_sub(ONES);
        let slash = (w ^ (ONES * b'\\' as u64)).wrapping_sub(ONES);
        (below | quote | slash) & !w & HIGH != 0
    };
    let b = t.as_bytes();
    out.push('"');
    let mut plain_from = 0;
    let mut i = 0;
    while i < b.len() {
        if let Some(chunk) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            if !special(w) {
                i += 8;
                continue;
            }
        }
        let esc = match b[i] {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&t[plain_from..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(b[i] >> 4) as usize] as char);
            out.push(HEX[(b[i] & 15) as usize] as char);
        } else {
            out.push_str(esc);
        }
        i += 1;
        plain_from = i;
    }
    out.push_str(&t[plain_from..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let alphabet = [
            "a",
            "\"",
            "\\",
            "\u{0}",
            "\u{1f}",
            "\u{8}",
            "\n",
            "\r",
            "\t",
            "\u{c}",
            " ",
            "~",
            "\u{7f}",
            "\u{e9}",
            "\u{1f600}",
            "\u{2028}",
            "0123456789",
        ];
        // A fixed linear congruential sequence: the same strings every run.
        let mut seed = 3u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for _ in 0..20_000 {
            let t: String = (0..next() % 40)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let mut got = String::new();
            write_str(&t, &mut got);
            assert_eq!(got, serde_json::to_string(&t).unwrap(), "{t:?}");
        }
    }

    #[test]
    fn numbers_are_javascripts() {
        let num = |x: f64| {
            let mut s = String::new();
            write_num(x, &mut s);
            s
        };
        assert_eq!(num(0.0), "0");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(-42.0), "-42");
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(8_999_999_999_999_999.0), "8999999999999999");
        assert_eq!(num(9.0e15), "9000000000000000.0");
        assert_eq!(num(u64::MAX as f64), "1.8446744073709552e+19");
        assert_eq!(num(i64::MIN as f64), "-9.223372036854776e+18");
        assert_eq!(num(f64::NAN), "null");
    }
}
