//! `prettylist`: JSON printed exactly as node's `util.inspect(list, false, null, false)`
//! prints it (what `pm2 prettylist` writes), because shell scripts written for pm2 grep
//! that text (`status: 'online'`, `restart_time: 1`).
//!
//! Pure: a JSON document in, a string out. It follows node 20's `lib/internal/util/
//! inspect.js` for plain data (objects, arrays, strings, numbers, booleans, null) with the
//! default options (`breakLength` 80, `compact` 3, `maxArrayLength` 100,
//! `maxStringLength` 10000): key quoting, quote choice and escapes, the one-line test of
//! `reduceToSingleString`, array grouping (`groupArrayElements`), long strings split at
//! newlines, JavaScript number formatting and JavaScript's key order (array-index keys
//! first). String widths for grouping use node's non-ICU table of wide characters.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value that keeps its keys in document order, as `JSON.parse` does.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Node>),
    Obj(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
        Ok(Node::Num(n as f64))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
        Ok(Node::Num(n as f64))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Node, E> {
        Ok(Node::Num(n))
    }
    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::Str(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Node, E> {
        Ok(Node::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(Node::Arr(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut v: Vec<(String, Node)> = Vec::new();
        while let Some((k, x)) = map.next_entry::<String, Node>()? {
            // JSON.parse: a repeated key keeps its first place and its last value.
            match v.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = x,
                None => v.push((k, x)),
            }
        }
        Ok(Node::Obj(v))
    }
}

/// Parses JSON text, keeping key order.
pub fn parse(json: &str) -> serde_json::Result<Node> {
    crate::json::from_text(json)
}

/// `util.inspect(value, false, null, false)`, without a trailing newline (pm2 writes it
/// with `process.stdout.write`).
pub fn inspect(v: &Node) -> String {
    let mut ctx = Ctx {
        indent: 0,
        current_depth: 0,
    };
    value(&mut ctx, v, 0)
}

const BREAK_LENGTH: usize = 80;
const COMPACT: usize = 3;
const MAX_ARRAY: usize = 100;
const MAX_STRING: usize = 10_000;
const MIN_LINE: usize = 16;

struct Ctx {
    indent: usize,
    /// node's `ctx.currentDepth`: the depth of the object entered last.
    current_depth: usize,
}

/// JavaScript's `.length`: UTF-16 code units.
fn js_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

fn value(ctx: &mut Ctx, v: &Node, recurse: usize) -> String {
    match v {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Num(n) => js_number(*n),
        Node::Str(s) => string(ctx, s),
        Node::Arr(a) => {
            if a.is_empty() {
                return "[]".into();
            }
            let recurse = recurse + 1;
            ctx.current_depth = recurse;
            let mut out = Vec::with_capacity(a.len().min(MAX_ARRAY) + 1);
            for x in a.iter().take(MAX_ARRAY) {
                ctx.indent += 2;
                out.push(value(ctx, x, recurse));
                ctx.indent -= 2;
            }
            if a.len() > MAX_ARRAY {
                let n = a.len() - MAX_ARRAY;
                out.push(format!("... {n} more item{}", if n > 1 { "s" } else { "" }));
            }
            let numbers = a.iter().take(out.len()).all(|x| matches!(x, Node::Num(_)));
            reduce(ctx, out, ('[', ']'), Some(numbers), recurse)
        }
        Node::Obj(o) => {
            if o.is_empty() {
                return "{}".into();
            }
            let recurse = recurse + 1;
            ctx.current_depth = recurse;
            let mut out = Vec::with_capacity(o.len());
            for i in js_key_order(o) {
                let (k, x) = &o[i];
                ctx.indent += 2;
                let s = value(ctx, x, recurse);
                ctx.indent -= 2;
                out.push(format!("{}: {s}", key(k)));
            }
            reduce(ctx, out, ('{', '}'), None, recurse)
        }
    }
}

/// JavaScript orders an object's array-index keys first, ascending, then the others in
/// insertion order.
fn js_key_order(o: &[(String, Node)]) -> Vec<usize> {
    let index = |k: &str| -> Option<u64> {
        let ok = k == "0" || (!k.starts_with('0') && !k.is_empty() && k.len() <= 10);
        if !ok || !k.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        k.parse::<u64>().ok().filter(|&n| n < u32::MAX as u64)
    };
    let mut idx: Vec<(u64, usize)> = Vec::new();
    let mut rest = Vec::new();
    for (i, (k, _)) in o.iter().enumerate() {
        match index(k) {
            Some(n) => idx.push((n, i)),
            None => rest.push(i),
        }
    }
    idx.sort_unstable();
    idx.into_iter().map(|(_, i)| i).chain(rest).collect()
}

fn key(k: &str) -> String {
    let mut b = k.bytes();
    let ident = matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if k == "__proto__" {
        "['__proto__']".into()
    } else if ident {
        k.to_string()
    } else {
        escape(k)
    }
}

fn string(ctx: &Ctx, s: &str) -> String {
    let mut trailer = String::new();
    let mut s = s;
    let len = js_len(s);
    if len > MAX_STRING {
        let mut units = 0;
        let mut cut = s.len();
        for (i, c) in s.char_indices() {
            if units + c.len_utf16() > MAX_STRING {
                cut = i;
                break;
            }
            units += c.len_utf16();
        }
        let n = len - MAX_STRING;
        trailer = format!("... {n} more character{}", if n > 1 { "s" } else { "" });
        s = &s[..cut];
    }
    let len = js_len(s);
    if len > MIN_LINE && len as isize > BREAK_LENGTH as isize - ctx.indent as isize - 4 {
        let sep = format!(" +\n{}", " ".repeat(ctx.indent + 2));
        let parts: Vec<String> = s.split_inclusive('\n').map(escape).collect();
        return parts.join(&sep) + &trailer;
    }
    escape(s) + &trailer
}

/// node's `strEscape`: single quotes unless the text holds one; then double quotes, or
/// backticks when it holds both.
fn escape(s: &str) -> String {
    let quote = if !s.contains('\'') {
        '\''
    } else if !s.contains('"') {
        '"'
    } else if !s.contains('`') && !s.contains("${") {
        '`'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        let p = c as u32;
        match c {
            '\'' if quote == '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            _ if p < 0x20 || (0x7f..0xa0).contains(&p) => {
                out.push_str(&format!("\\x{p:02X}"));
            }
            _ => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `String(number)` in JavaScript.
pub fn js_number(n: f64) -> String {
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    if !n.is_finite() {
        return if n.is_nan() {
            "NaN".into()
        } else if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    // serde_json prints the shortest digits that round-trip (ryu), with the same choice
    // between two equally near candidates as JavaScript; Rust's `{:e}` sometimes differs.
    let text = serde_json::to_string(&n.abs()).unwrap_or_default();
    let (mant, exp) = text.split_once(['e', 'E']).unwrap_or((&text, "0"));
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let all = format!("{int}{frac}");
    let lead = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_matches('0').to_string();
    let k = digits.len() as i32;
    let n10 = int.len() as i32 - lead as i32 + exp.parse::<i32>().unwrap_or(0);
    let sign = if n < 0.0 { "-" } else { "" };
    let body = if k <= n10 && n10 <= 21 {
        format!("{digits}{}", "0".repeat((n10 - k) as usize))
    } else if 0 < n10 && n10 <= 21 {
        let (a, b) = digits.split_at(n10 as usize);
        format!("{a}.{b}")
    } else if -6 < n10 && n10 <= 0 {
        format!("0.{}{digits}", "0".repeat((-n10) as usize))
    } else {
        let e = n10 - 1;
        let es = if e >= 0 {
            format!("+{e}")
        } else {
            e.to_string()
        };
        if k == 1 {
            format!("{digits}e{es}")
        } else {
            format!("{}.{}e{es}", &digits[..1], &digits[1..])
        }
    };
    format!("{sign}{body}")
}

/// node's `reduceToSingleString` for `compact: 3`. `numbers` is `Some` for arrays (whether
/// every shown entry is a number, which right-aligns grouped columns).
fn reduce(
    ctx: &Ctx,
    mut out: Vec<String>,
    braces: (char, char),
    numbers: Option<bool>,
    recurse: usize,
) -> String {
    let entries = out.len();
    if let Some(numbers) = numbers {
        if entries > 6 {
            out = group(ctx, out, numbers);
        }
    }
    if ctx.current_depth - recurse < COMPACT && entries == out.len() {
        let start = out.len() + ctx.indent + 1 + 10;
        if below_break_length(&out, start) {
            let joined = out.join(", ");
            if !joined.contains('\n') {
                return format!("{} {joined} {}", braces.0, braces.1);
            }
        }
    }
    let ind = format!("\n{}", " ".repeat(ctx.indent));
    format!(
        "{}{ind}  {}{ind}{}",
        braces.0,
        out.join(&format!(",{ind}  ")),
        braces.1
    )
}

fn below_break_length(out: &[String], start: usize) -> bool {
    let mut total = out.len() + start;
    if total + out.len() > BREAK_LENGTH {
        return false;
    }
    for o in out {
        total += js_len(o);
        if total > BREAK_LENGTH {
            return false;
        }
    }
    true
}

/// node's `getStringWidth` without ICU: wide East Asian characters count two columns,
/// combining marks none.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let p = c as u32;
            if p < 0x20 || (0x7f..0xa0).contains(&p) || zero_width(p) {
                0
            } else if full_width(p) {
                2
            } else {
                1
            }
        })
        .sum()
}

fn zero_width(p: u32) -> bool {
    p <= 0x1f
        || (0x7f..=0x9f).contains(&p)
        || (0x300..=0x36f).contains(&p)
        || (0x200b..=0x200f).contains(&p)
        || (0x20d0..=0x20ff).contains(&p)
        || (0xfe00..=0xfe0f).contains(&p)
        || (0xfe20..=0xfe2f).contains(&p)
        || (0xe0100..=0xe01ef).contains(&p)
}

fn full_width(p: u32) -> bool {
    p >= 0x1100
        && (p <= 0x115f
            || p == 0x2329
            || p == 0x232a
            || ((0x2e80..=0x3247).contains(&p) && p != 0x303f)
            || (0x3250..=0x4dbf).contains(&p)
            || (0x4e00..=0xa4c6).contains(&p)
            || (0xa960..=0xa97c).contains(&p)
            || (0xac00..=0xd7a3).contains(&p)
            || (0xf900..=0xfaff).contains(&p)
            || (0xfe10..=0xfe19).contains(&p)
            || (0xfe30..=0xfe6b).contains(&p)
            || (0xff01..=0xff60).contains(&p)
            || (0xffe0..=0xffe6).contains(&p)
            || (0x1b000..=0x1b001).contains(&p)
            || (0x1f200..=0x1f251).contains(&p)
            || (0x1f300..=0x1f64f).contains(&p)
            || (0x20000..=0x3fffd).contains(&p))
}

fn pad(s: &str, to: usize, start: bool) -> String {
    let n = to.saturating_sub(js_len(s));
    if start {
        format!("{}{s}", " ".repeat(n))
    } else {
        format!("{s}{}", " ".repeat(n))
    }
}

/// node's `groupArrayElements`: long arrays of short entries go in aligned columns.
fn group(ctx: &Ctx, out: Vec<String>, numbers: bool) -> Vec<String> {
    let mut len = out.len();
    if MAX_ARRAY < out.len() {
        len -= 1;
    }
    const SEP: usize = 2;
    let data: Vec<usize> = out[..len].iter().map(|s| width(s)).collect();
    let total: usize = data.iter().map(|d| d + SEP).sum();
    let max_len = data.iter().copied().max().unwrap_or(0);
    let actual_max = max_len + SEP;
    if !(actual_max * 3 + ctx.indent < BREAK_LENGTH
        && (total as f64 / actual_max as f64 > 5.0 || max_len <= 6))
    {
        return out;
    }
    let average_bias = (actual_max as f64 - total as f64 / out.len() as f64).sqrt();
    let biased_max = (actual_max as f64 - 3.0 - average_bias).max(1.0);
    let columns = ((2.5 * biased_max * len as f64).sqrt() / biased_max)
        .round()
        .min(((BREAK_LENGTH - ctx.indent.min(BREAK_LENGTH)) / actual_max) as f64)
        .min((COMPACT * 4) as f64)
        .min(15.0) as usize;
    if columns <= 1 {
        return out;
    }
    let mut max_line = Vec::with_capacity(columns);
    for i in 0..columns {
        let mut m = 0;
        let mut j = i;
        while j < len {
            m = m.max(data[j]);
            j += columns;
        }
        max_line.push(m + SEP);
    }
    let mut tmp = Vec::new();
    let mut i = 0;
    while i < len {
        let max = (i + columns).min(len);
        let mut s = String::new();
        for j in i..max - 1 {
            let padding = max_line[j - i] + js_len(&out[j]) - data[j];
            s.push_str(&pad(&format!("{}, ", out[j]), padding, numbers));
        }
        let j = max - 1;
        if numbers {
            let padding = max_line[j - i] + js_len(&out[j]) - data[j] - SEP;
            s.push_str(&pad(&out[j], padding, true));
        } else {
            s.push_str(&out[j]);
        }
        tmp.push(s);
        i += columns;
    }
    if MAX_ARRAY < out.len() {
        tmp.push(out[len].clone());
    }
    tmp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(json: &str) -> String {
        inspect(&parse(json).unwrap())
    }

    /// The list pm2 7 printed (tests/fixtures/pm2-prettylist.txt) and the same data as
    /// JSON: ward's renderer must give back pm2's text byte for byte.
    #[test]
    fn pm2_prettylist_golden() {
        let json = include_str!("../../tests/fixtures/pm2-prettylist.json");
        let want = include_str!("../../tests/fixtures/pm2-prettylist.txt");
        let got = show(json);
        if got != want {
            for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
                assert_eq!(g, w, "first difference at line {}", i + 1);
            }
            assert_eq!(got, want);
        }
    }

    #[test]
    fn scalars_and_keys() {
        assert_eq!(show("[]"), "[]");
        assert_eq!(show("{}"), "{}");
        assert_eq!(show("null"), "null");
        assert_eq!(
            show(r#"{"a-b":1,"ok_1":true,"1x":null}"#),
            "{ 'a-b': 1, ok_1: true, '1x': null }"
        );
        assert_eq!(show(r#"{"b":1,"10":2,"2":3}"#), "{ '2': 3, '10': 2, b: 1 }");
        assert_eq!(show(r#"["it's"]"#), r#"[ "it's" ]"#);
        assert_eq!(show(r#"["it's \"x\""]"#), r#"[ `it's "x"` ]"#);
        assert_eq!(show(r#"["a\\b\n\u0001"]"#), r#"[ 'a\\b\n\x01' ]"#);
        assert_eq!(show(r#"{"__proto__":1}"#), "{ ['__proto__']: 1 }");
    }

    #[test]
    fn numbers_like_javascript() {
        for (n, s) in [
            (1.2, "1.2"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (-3.25, "-3.25"),
            (123456789.0, "123456789"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(js_number(n), s);
        }
    }

    #[test]
    fn long_arrays_are_grouped_and_cut() {
        let nums: Vec<u32> = (0..30).collect();
        let got = show(&serde_json::to_string(&nums).unwrap());
        let want = "[\n   0,  1,  2,  3,  4,  5,  6,  7,  8,\n   9, 10, 11, 12, 13, 14, 15, 16, 17,\n  18, 19, 20, 21, 22, 23, 24, 25, 26,\n  27, 28, 29\n]";
        assert_eq!(got, want);
        let many: Vec<u32> = (0..102).collect();
        assert!(show(&serde_json::to_string(&many).unwrap()).ends_with("... 2 more items\n]"));
    }

    #[test]
    fn long_strings_break_at_newlines() {
        let s = format!("{}\n{}", "a".repeat(50), "b".repeat(40));
        let got = show(&serde_json::to_string(&vec![s]).unwrap());
        assert_eq!(
            got,
            format!(
                "[\n  '{}\\n' +\n    '{}'\n]",
                "a".repeat(50),
                "b".repeat(40)
            )
        );
    }
}

/// The way `jlist` was made before spec/pm2record.rs wrote its text directly: each app's
/// JSON value (serde_json sorts its keys) moved into nodes in pm2's key order, then written.
/// Kept as the reference that writer is held to, byte for byte (`order_tests`).
#[cfg(test)]
mod reference {
    use super::Node;
    use crate::spec::pm2record::{PM2_ENTRY, PM2_ENV_HEAD, PM2_ENV_MIDDLE, PM2_ENV_TAIL};

    /// Converts `jlist` entries (serde_json sorts keys) into nodes in pm2's key order.
    ///
    /// Takes the entries by value: every string moves into its node instead of being copied
    /// (`jlist` of 100 apps is ~1 MB of strings; copying them cost a third of its time).
    pub fn pm2_order(list: Vec<serde_json::Value>) -> Node {
        Node::Arr(list.into_iter().map(entry).collect())
    }

    fn plain(v: serde_json::Value) -> Node {
        use serde_json::Value as V;
        match v {
            V::Null => Node::Null,
            V::Bool(b) => Node::Bool(b),
            V::Number(n) => Node::Num(n.as_f64().unwrap_or(0.0)),
            V::String(s) => Node::Str(s),
            V::Array(a) => Node::Arr(a.into_iter().map(plain).collect()),
            V::Object(m) => Node::Obj(m.into_iter().map(|(k, v)| (k, plain(v))).collect()),
        }
    }

    fn entry(v: serde_json::Value) -> Node {
        let serde_json::Value::Object(mut m) = v else {
            return plain(v);
        };
        let mut out = Vec::with_capacity(m.len());
        for k in PM2_ENTRY {
            if let Some((k, x)) = m.remove_entry(*k) {
                let node = if k == "pm2_env" { pm2_env(x) } else { plain(x) };
                out.push((k, node));
            }
        }
        out.extend(m.into_iter().map(|(k, x)| (k, plain(x))));
        Node::Obj(out)
    }

    fn pm2_env(v: serde_json::Value) -> Node {
        let serde_json::Value::Object(mut m) = v else {
            return plain(v);
        };
        // The environment's names; `env` itself stays in `m` (it is a HEAD key).
        let env_keys: Vec<String> = m
            .get("env")
            .and_then(|e| e.as_object())
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default();
        let is_env: std::collections::HashSet<&str> = env_keys.iter().map(String::as_str).collect();
        let named = |k: &str| k.starts_with("env_");
        let known = |k: &str| {
            PM2_ENV_HEAD.contains(&k) || PM2_ENV_MIDDLE.contains(&k) || PM2_ENV_TAIL.contains(&k)
        };
        let mut out: Vec<(String, Node)> = Vec::with_capacity(m.len());
        // Taking a key removes it from `m`: each key is written once, with no search of `out`
        // (that search made ordering quadratic in the number of keys).
        let take = |m: &mut serde_json::Map<String, serde_json::Value>,
                    out: &mut Vec<(String, Node)>,
                    k: &str| {
            if let Some((k, x)) = m.remove_entry(k) {
                out.push((k, plain(x)));
            }
        };
        for k in PM2_ENV_HEAD {
            take(&mut m, &mut out, k);
        }
        // pm2 puts the env_<name> blocks after its defaults, then the rest of the app's config.
        let keys: Vec<String> = m.keys().filter(|k| named(k)).cloned().collect();
        for k in &keys {
            take(&mut m, &mut out, k);
        }
        let keys: Vec<String> = m
            .keys()
            .filter(|k| !known(k) && !is_env.contains(k.as_str()))
            .cloned()
            .collect();
        for k in &keys {
            take(&mut m, &mut out, k);
        }
        for k in PM2_ENV_MIDDLE {
            take(&mut m, &mut out, k);
        }
        for k in &env_keys {
            if !known(k) {
                take(&mut m, &mut out, k);
            }
        }
        for k in PM2_ENV_TAIL {
            take(&mut m, &mut out, k);
        }
        Node::Obj(out)
    }

    /// JSON text of a node, keys in the node's order (as `JSON.stringify` writes it).
    pub fn to_json(n: &Node) -> String {
        let mut s = String::new();
        write_json(n, &mut s);
        s
    }

    /// The escaping jlist's writer uses (spec/jsontext.rs, held to serde_json's by its own
    /// tests and the fuzz target).
    use crate::spec::jsontext::write_str;

    fn write_json(n: &Node, s: &mut String) {
        match n {
            Node::Null => s.push_str("null"),
            Node::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
            Node::Num(x) => {
                use std::fmt::Write;
                if x.fract() == 0.0 && x.abs() < 9.0e15 {
                    let _ = write!(s, "{}", *x as i64);
                } else {
                    match serde_json::Number::from_f64(*x) {
                        Some(n) => {
                            let _ = write!(s, "{n}");
                        }
                        None => s.push_str("null"),
                    }
                }
            }
            Node::Str(t) => write_str(t, s),
            Node::Arr(a) => {
                s.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    write_json(x, s);
                }
                s.push(']');
            }
            Node::Obj(o) => {
                s.push('{');
                for (i, (k, x)) in o.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    write_str(k, s);
                    s.push(':');
                    write_json(x, s);
                }
                s.push('}');
            }
        }
    }
}

#[cfg(test)]
mod order_tests {
    use super::Node;
    use super::reference::{pm2_order, to_json};
    use crate::protocol::AppView;
    use crate::spec::pm2record::tests::{Rng, legacy, random_view, samples};

    #[test]
    fn jlist_entries_come_in_pm2s_key_order() {
        let v: serde_json::Value = serde_json::json!([{
            "monit": {"memory": 1, "cpu": 0}, "name": "api", "pid": 7, "pm_id": 0,
            "pm2_env": {"status": "online", "name": "api", "env": {"NODE_ENV": "x"},
                        "NODE_ENV": "x", "pm_exec_path": "/a.js", "restart_time": 2,
                        "max_restarts": 16, "namespace": "default", "env_prod": {}}
        }]);
        let n = pm2_order(v.as_array().unwrap().clone());
        let Node::Arr(a) = &n else { panic!() };
        let Node::Obj(top) = &a[0] else { panic!() };
        let keys: Vec<&str> = top.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["pid", "name", "pm2_env", "pm_id", "monit"]);
        let Node::Obj(env) = &top[2].1 else { panic!() };
        let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "name",
                "namespace",
                "env",
                "env_prod",
                "max_restarts",
                "pm_exec_path",
                "NODE_ENV",
                "status",
                "restart_time"
            ]
        );
        let json = to_json(&n);
        assert!(
            json.starts_with("[{\"pid\":7,\"name\":\"api\",\"pm2_env\":{\"name\":\"api\""),
            "{json}"
        );
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
    }

    fn old_way(apps: &[AppView], home: &str, user: &str) -> String {
        to_json(&pm2_order(
            apps.iter().map(|v| legacy(v, home, user)).collect(),
        ))
    }

    fn new_way(apps: &[AppView], home: &str, user: &str) -> String {
        let mut s = String::new();
        crate::spec::pm2record::write_list(apps, home, user, &mut s);
        s
    }

    fn same(apps: &[AppView], home: &str, user: &str) {
        let (got, want) = (new_way(apps, home, user), old_way(apps, home, user));
        if got != want {
            let at = got
                .bytes()
                .zip(want.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            let from = at.saturating_sub(120);
            panic!(
                "the texts part at byte {at}:\n got …{}\nwant …{}\napps: {apps:?}",
                got.get(from..(at + 80).min(got.len())).unwrap_or(&got),
                want.get(from..(at + 80).min(want.len())).unwrap_or(&want),
            );
        }
    }

    /// `write_list` writes, byte for byte, what the record's value reordered into nodes
    /// and written out gave: for apps picked to meet each rule, and for many made at random.
    #[test]
    fn jlist_text_is_the_old_pipelines() {
        same(&[], "/h", "root");
        let all = samples();
        for v in &all {
            same(std::slice::from_ref(v), "/h", "root");
        }
        same(&all, "/h\u{e9}/\"q\"\n", "r\u{1}\u{f6}ot");
        let mut rng = Rng::new(7);
        for _ in 0..600 {
            let n = 1 + (rng.next() % 4) as usize;
            let mut apps: Vec<AppView> = (0..n).map(|_| random_view(&mut rng)).collect();
            // Apps started from one shell share one environment, apps of one ecosystem
            // file have it but for their names (the writer reuses its text from app to
            // app then, whole or in part).
            for i in 1..n {
                match rng.next() % 3 {
                    0 => apps[i].app.spec.env = apps[i - 1].app.spec.env.clone(),
                    1 => {
                        let mut env = (*apps[i - 1].app.spec.env).clone();
                        env.insert(apps[i].app.spec.name.clone(), "{}".into());
                        apps[i].app.spec.env = std::sync::Arc::new(env);
                    }
                    _ => {}
                }
            }
            same(&apps, "/home/u/.pm2", "u");
        }
    }
}
