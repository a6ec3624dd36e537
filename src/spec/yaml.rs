//! A reader for the block subset of YAML that pm2 users write in ecosystem files
//! (`process.yml`, `ecosystem.config.yml`): maps, lists, plain and quoted scalars, comments,
//! one-line flow lists and maps, and `|` / `>` block scalars. Anything beyond it (anchors,
//! aliases, tags, complex keys, several documents) is refused with its line number, rather
//! than read wrongly. No YAML crate is allowed by the dependency list; this is enough.
//!
//! Pure: text in, `serde_json::Value` out, so the ecosystem reader treats YAML and JSON alike.

use serde_json::{Map, Number, Value};

use crate::spec::jsonish::MAX_NESTING;

fn too_deep() -> String {
    format!("lists and maps nested more than {MAX_NESTING} levels deep")
}

#[derive(Debug, PartialEq)]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

type Res<T> = Result<T, YamlError>;

fn err<T>(line: usize, message: impl Into<String>) -> Res<T> {
    Err(YamlError {
        line,
        message: message.into(),
    })
}

#[derive(Debug, Clone)]
struct Line {
    no: usize,
    indent: usize,
    text: String,
    /// The raw line, for block scalars (which keep `#` and spacing).
    raw: String,
}

pub fn parse(src: &str) -> Res<Value> {
    let mut lines = Vec::new();
    let mut seen_content = false;
    for (i, raw) in src.lines().enumerate() {
        let no = i + 1;
        let body = raw.trim_end();
        let lead = &body[..body.len() - body.trim_start().len()];
        if lead.contains('\t') {
            return err(no, "a tab in the indentation (YAML indents with spaces)");
        }
        let text = strip_comment(body.trim_start());
        if text.is_empty() {
            lines.push(Line {
                no,
                indent: usize::MAX,
                text: String::new(),
                raw: raw.to_string(),
            });
            continue;
        }
        if text == "---" || text.starts_with("--- ") {
            if seen_content {
                return err(no, "several documents in one file are not supported");
            }
            continue;
        }
        if text == "..." {
            break;
        }
        if text.starts_with('%') {
            return err(no, "YAML directives are not supported");
        }
        seen_content = true;
        lines.push(Line {
            no,
            indent: lead.len(),
            text: text.to_string(),
            raw: raw.to_string(),
        });
    }
    let mut p = Parser {
        lines,
        pos: 0,
        depth: 0,
    };
    p.skip_blank();
    if p.pos >= p.lines.len() {
        return Ok(Value::Null);
    }
    let indent = p.lines[p.pos].indent;
    let v = p.block(indent)?;
    p.skip_blank();
    if let Some(l) = p.lines.get(p.pos) {
        return err(l.no, "unexpected indentation");
    }
    Ok(v)
}

/// Removes a comment: `#` at the start or after a space, outside quotes.
fn strip_comment(s: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if (c == '\'' || c == '"') && (i == 0 || " [{,:".contains(prev)) => {
                quote = Some(c)
            }
            None if c == '#' && (i == 0 || prev == ' ') => return s[..i].trim_end(),
            None => {}
        }
        prev = c;
    }
    s
}

struct Parser {
    lines: Vec<Line>,
    pos: usize,
    /// Blocks open around the current line (refused beyond `MAX_NESTING`).
    depth: usize,
}

impl Parser {
    fn skip_blank(&mut self) {
        while self.pos < self.lines.len() && self.lines[self.pos].indent == usize::MAX {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<Line> {
        self.skip_blank();
        self.lines.get(self.pos).cloned()
    }

    /// A block whose lines start at column `indent`.
    fn block(&mut self, indent: usize) -> Res<Value> {
        let Some(first) = self.peek() else {
            return Ok(Value::Null);
        };
        if self.depth >= MAX_NESTING {
            return err(first.no, too_deep());
        }
        self.depth += 1;
        let v = self.block_at(indent, first);
        self.depth -= 1;
        v
    }

    fn block_at(&mut self, indent: usize, first: Line) -> Res<Value> {
        if is_seq_item(&first.text) {
            self.sequence(indent)
        } else if split_key(&first.text, first.no)?.is_some() {
            self.mapping(indent)
        } else {
            self.pos += 1;
            let v = scalar(&first.text, first.no)?;
            if let Some(next) = self.peek() {
                if next.indent > indent {
                    return err(next.no, "a value cannot be followed by more indented lines");
                }
            }
            Ok(v)
        }
    }

    fn sequence(&mut self, indent: usize) -> Res<Value> {
        let mut items = Vec::new();
        while let Some(l) = self.peek() {
            if l.indent < indent {
                break;
            }
            if l.indent > indent {
                return err(l.no, "unexpected indentation in a list");
            }
            if !is_seq_item(&l.text) {
                break;
            }
            let rest = l.text[1..].trim_start();
            if rest.is_empty() {
                self.pos += 1;
                match self.peek() {
                    Some(n) if n.indent > indent => items.push(self.block(n.indent)?),
                    _ => items.push(Value::Null),
                }
                continue;
            }
            // `- key: value` opens a map whose keys line up with `key`.
            let col = indent + (l.text.len() - rest.len());
            if is_seq_item(rest) || split_key(rest, l.no)?.is_some() {
                self.lines[self.pos] = Line {
                    no: l.no,
                    indent: col,
                    text: rest.to_string(),
                    raw: l.raw.clone(),
                };
                items.push(self.block(col)?);
            } else {
                self.pos += 1;
                items.push(self.inline_value(rest, l.no, indent)?);
            }
        }
        Ok(Value::Array(items))
    }

    fn mapping(&mut self, indent: usize) -> Res<Value> {
        let mut map = Map::new();
        while let Some(l) = self.peek() {
            if l.indent < indent {
                break;
            }
            if l.indent > indent {
                return err(l.no, "unexpected indentation in a map");
            }
            if is_seq_item(&l.text) {
                break;
            }
            let Some((key, rest)) = split_key(&l.text, l.no)? else {
                return err(l.no, format!("expected `key: value`, found {:?}", l.text));
            };
            if map.contains_key(&key) {
                return err(l.no, format!("the key {key:?} appears twice"));
            }
            self.pos += 1;
            let value = if rest.is_empty() {
                match self.peek() {
                    Some(n) if n.indent > indent => self.block(n.indent)?,
                    // pm2 users write lists at the key's own indentation too.
                    Some(n) if n.indent == indent && is_seq_item(&n.text) => {
                        self.sequence(indent)?
                    }
                    _ => Value::Null,
                }
            } else {
                self.inline_value(&rest, l.no, indent)?
            };
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }

    /// The value after `key:` or `- ` on the same line; `|` and `>` read the lines below.
    fn inline_value(&mut self, s: &str, no: usize, indent: usize) -> Res<Value> {
        let head = s.split_whitespace().next().unwrap_or("");
        if matches!(head, "|" | "|-" | "|+" | ">" | ">-" | ">+") {
            return Ok(Value::String(self.block_scalar(head, indent)));
        }
        scalar(s, no)
    }

    fn block_scalar(&mut self, head: &str, indent: usize) -> String {
        let mut body: Vec<String> = Vec::new();
        let mut min = usize::MAX;
        let start = self.pos;
        while self.pos < self.lines.len() {
            let l = &self.lines[self.pos];
            let raw_indent = l.raw.len() - l.raw.trim_start().len();
            if l.raw.trim().is_empty() {
                body.push(String::new());
            } else if raw_indent > indent {
                min = min.min(raw_indent);
                body.push(l.raw.clone());
            } else {
                break;
            }
            self.pos += 1;
        }
        let _ = start;
        while body.last().is_some_and(|l| l.is_empty()) {
            body.pop();
        }
        let lines: Vec<&str> = body
            .iter()
            .map(|l| if l.len() >= min { &l[min..] } else { "" })
            .collect();
        let mut s = if head.starts_with('|') {
            lines.join("\n")
        } else {
            // Folded: lines join with spaces, blank lines stay line breaks.
            let mut out = String::new();
            for l in &lines {
                if l.is_empty() {
                    out.push('\n');
                } else {
                    if !out.is_empty() && !out.ends_with('\n') {
                        out.push(' ');
                    }
                    out.push_str(l);
                }
            }
            out
        };
        if !head.ends_with('-') {
            s.push('\n');
        }
        s
    }
}

fn is_seq_item(s: &str) -> bool {
    s == "-" || s.starts_with("- ")
}

/// `key: rest` → (key, rest); `None` when the line is not a mapping entry.
fn split_key(s: &str, no: usize) -> Res<Option<(String, String)>> {
    if s.starts_with("? ") {
        return err(no, "complex keys (`? `) are not supported");
    }
    let (key, rest) = if s.starts_with('"') || s.starts_with('\'') {
        let q = s.chars().next().unwrap_or('"');
        let Some(end) = s[1..].find(q) else {
            return Ok(None);
        };
        let after = &s[end + 2..];
        let Some(rest) = after.strip_prefix(':') else {
            return Ok(None);
        };
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return Ok(None);
        }
        (unquote(&s[..end + 2], no)?, rest)
    } else {
        if s.starts_with('[') || s.starts_with('{') {
            return Ok(None);
        }
        let Some(i) = find_colon(s) else {
            return Ok(None);
        };
        (s[..i].trim_end().to_string(), &s[i + 1..])
    };
    Ok(Some((key, rest.trim().to_string())))
}

/// The first `:` followed by a space or the end of the line.
fn find_colon(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len()).find(|&i| b[i] == b':' && (i + 1 == b.len() || b[i + 1] == b' '))
}

fn unquote(s: &str, no: usize) -> Res<String> {
    let q = s.chars().next().unwrap_or('"');
    let inner = &s[1..s.len() - 1];
    if q == '\'' {
        return Ok(inner.replace("''", "'"));
    }
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('/') => out.push('/'),
            Some(' ') => out.push(' '),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => return err(no, format!("bad escape \\u{hex}")),
                }
            }
            Some(other) => return err(no, format!("unknown escape \\{other}")),
            None => return err(no, "a backslash ends the string"),
        }
    }
    Ok(out)
}

/// One scalar, or a one-line flow list or map.
fn scalar(s: &str, no: usize) -> Res<Value> {
    let s = s.trim();
    if s.starts_with('[') || s.starts_with('{') {
        let (v, rest) = flow(s, no, 0)?;
        if !rest.trim().is_empty() {
            return err(no, format!("unexpected text after a flow value: {rest:?}"));
        }
        return Ok(v);
    }
    if let Some(c) = s.chars().next() {
        match c {
            '&' => return err(no, "anchors (`&`) are not supported"),
            '*' => return err(no, "aliases (`*`) are not supported"),
            '!' => return err(no, "tags (`!`) are not supported"),
            '@' | '`' => return err(no, format!("a plain value cannot start with {c:?}")),
            '"' | '\'' => {
                if s.len() < 2 || !s.ends_with(c) {
                    return err(no, "a quoted string is not closed on its line");
                }
                return Ok(Value::String(unquote(s, no)?));
            }
            _ => {}
        }
    }
    Ok(plain(s))
}

/// YAML 1.2 core schema: null, booleans, integers, floats; anything else is a string.
fn plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = s.parse::<i64>() {
            return Value::Number(n.into());
        }
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if let Ok(n) = i64::from_str_radix(hex, 16) {
            return Value::Number(n.into());
        }
    }
    let looks_float = digits.bytes().any(|b| b.is_ascii_digit())
        && digits.bytes().all(|b| {
            b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E' || b == b'-' || b == b'+'
        });
    if looks_float {
        if let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_string())
}

/// A flow value at the start of `s`; returns it and what follows.
fn flow(s: &str, no: usize, depth: usize) -> Res<(Value, &str)> {
    if depth >= MAX_NESTING {
        return err(no, too_deep());
    }
    let s = s.trim_start();
    let (open, close) = match s.chars().next() {
        Some('[') => ('[', ']'),
        Some('{') => ('{', '}'),
        _ => return err(no, "expected [ or {"),
    };
    let mut rest = s[1..].trim_start();
    let mut items = Vec::new();
    let mut map = Map::new();
    loop {
        if let Some(r) = rest.strip_prefix(close) {
            let v = if open == '[' {
                Value::Array(items)
            } else {
                Value::Object(map)
            };
            return Ok((v, r));
        }
        if rest.is_empty() {
            return err(
                no,
                format!("a flow value is not closed with {close:?} on its line"),
            );
        }
        let (item, r) = flow_item(rest, no, close, depth + 1)?;
        rest = r.trim_start();
        if open == '[' {
            items.push(item);
        } else {
            let Value::String(pair) = item else {
                return err(no, "expected `key: value` in a flow map");
            };
            let Some(i) = pair.find(':') else {
                return err(no, "expected `key: value` in a flow map");
            };
            let key = pair[..i].trim().trim_matches(['"', '\'']).to_string();
            map.insert(key, plain(pair[i + 1..].trim()));
        }
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        }
    }
}

fn flow_item(s: &str, no: usize, close: char, depth: usize) -> Res<(Value, &str)> {
    if s.starts_with('[') || s.starts_with('{') {
        return flow(s, no, depth);
    }
    if let Some(q) = s.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let Some(end) = s[1..].find(q) else {
            return err(no, "a quoted string is not closed");
        };
        return Ok((Value::String(unquote(&s[..end + 2], no)?), &s[end + 2..]));
    }
    let end = s.find([',', close]).unwrap_or(s.len());
    let text = s[..end].trim();
    // Inside a flow map the pair is split by the caller.
    let v = if close == '}' {
        Value::String(text.to_string())
    } else {
        plain(text)
    };
    Ok((v, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_and_values() {
        let cases: Vec<(&str, Value)> = vec![
            ("a: 1\nb: two\n", json!({"a": 1, "b": "two"})),
            ("- a\n- 'b c'\n- \"d\\te\"\n", json!(["a", "b c", "d\te"])),
            (
                "apps:\n  - name: api\n    script: ./api.js\n    instances: 2\n    env:\n      NODE_ENV: production\n      PORT: 3000\n  - name: worker\n    script: worker.py\n",
                json!({"apps": [
                    {"name": "api", "script": "./api.js", "instances": 2,
                     "env": {"NODE_ENV": "production", "PORT": 3000}},
                    {"name": "worker", "script": "worker.py"}
                ]}),
            ),
            (
                "apps:\n- name: x # the app\n  args:\n  - --port\n  - 8080\n  autorestart: false\n",
                json!({"apps": [{"name": "x", "args": ["--port", 8080], "autorestart": false}]}),
            ),
            (
                "args: [--port, \"80 80\", 3]\nenv: {A: 1, B: x}\n",
                json!({"args": ["--port", "80 80", 3], "env": {"A": 1, "B": "x"}}),
            ),
            (
                "---\n# comment only line\nk: ~\nn: null\nf: 1.5\nneg: -3\ns: 'it''s'\nurl: http://x:80/a#b\n",
                json!({"k": null, "n": null, "f": 1.5, "neg": -3, "s": "it's", "url": "http://x:80/a#b"}),
            ),
            (
                "cmd: |\n  line one\n  line two\nafter: 1\n",
                json!({"cmd": "line one\nline two\n", "after": 1}),
            ),
            ("cmd: >-\n  a\n  b\n", json!({"cmd": "a b"})),
            ("\"quoted key\": v\n", json!({"quoted key": "v"})),
            ("", Value::Null),
            ("- - a\n  - b\n- c\n", json!([["a", "b"], "c"])),
        ];
        for (src, want) in cases {
            assert_eq!(parse(src).unwrap(), want, "document:\n{src}");
        }
    }

    #[test]
    fn malformed_documents_name_the_line() {
        let cases: Vec<(&str, usize, &str)> = vec![
            ("a: 1\n\tb: 2\n", 2, "tab"),
            ("a: &x 1\n", 1, "anchors"),
            ("a: *x\n", 1, "aliases"),
            ("a: !!str 1\n", 1, "tags"),
            ("a: 1\n---\nb: 2\n", 2, "several documents"),
            ("a: 1\na: 2\n", 2, "appears twice"),
            ("a: [1, 2\n", 1, "not closed"),
            ("a: 'open\n", 1, "not closed"),
            ("a:\n  b: 1\n   c: 2\n", 3, "indentation"),
            ("? complex\n", 1, "complex keys"),
            ("a: 1\n  b: 2\n", 2, "indentation"),
            ("- a\nb: 1\n", 2, "indentation"),
        ];
        for (src, line, word) in cases {
            let e = parse(src).unwrap_err();
            assert_eq!(e.line, line, "document:\n{src}\nerror: {e}");
            assert!(e.message.contains(word), "document:\n{src}\nerror: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        crate::spec::jsonish::tests::on_main_sized_stack(deep_nesting);
    }

    fn deep_nesting() {
        let seq = |n: usize| format!("x:\n  {}1\n", "- ".repeat(n));
        assert!(parse(&seq(MAX_NESTING - 2)).is_ok());
        let e = parse(&seq(20_000)).unwrap_err();
        assert!(e.message.contains("nested more than 1000 levels"), "{e}");
        let flow = |n: usize| format!("x: {}{}\n", "[".repeat(n), "]".repeat(n));
        assert!(parse(&flow(MAX_NESTING)).is_ok());
        let e = parse(&flow(20_000)).unwrap_err();
        assert!(e.message.contains("nested more than 1000 levels"), "{e}");
    }
}
