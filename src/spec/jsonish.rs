//! Reads the literal subset of JavaScript that ecosystem files are written in, without node:
//! JSON plus comments, unquoted keys, single quotes, template strings without `${}`,
//! trailing commas, and a `module.exports =` / `export default` wrapper.
//!
//! It remembers where every key was written (line and column), so that a wrong value can be
//! shown where it is. Anything that is code rather than data (`require`, a variable, a
//! function, `a + b`) is reported as `Failure::Code`, so the caller can say that node is
//! needed. Pure: text in, value out.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

/// How deep lists and objects may nest. Ecosystem files nest a handful of levels; a
/// recursive reader given 20,000 overflows the client's stack (abort, exit 134), so deeper
/// input is refused with an error instead. 1,000 keeps a margin in unoptimised builds.
pub const MAX_NESTING: usize = 1000;

/// A value and where each part of it was written.
#[derive(Debug, Default)]
pub struct Parsed {
    pub value: Value,
    /// `"apps/0/instances"` → (line, column) of the key (or of the element, in arrays);
    /// both count from 1.
    pub positions: HashMap<String, (usize, usize)>,
}

#[derive(Debug, PartialEq)]
pub enum Failure {
    /// Not valid even as a literal: (line, column, what is wrong).
    Syntax(usize, usize, String),
    /// Valid JavaScript perhaps, but code: it needs node to evaluate.
    Code(usize, usize, String),
}

type R<T> = std::result::Result<T, Failure>;

/// A JSON document, read leniently as pm2 does (it evaluates `.json` files as JavaScript):
/// comments, unquoted keys, single quotes and trailing commas are accepted.
pub fn parse_json(src: &str) -> R<Parsed> {
    let mut p = P::new(src);
    p.skip_ws()?;
    let value = p.value("")?;
    p.skip_ws()?;
    if !p.at_end() {
        return Err(p.unexpected("the end of the file after the value"));
    }
    Ok(Parsed {
        value,
        positions: p.positions,
    })
}

/// A `.js` ecosystem file that only assigns a literal: `module.exports = {...}` or
/// `export default {...}`, optionally after `'use strict'`.
pub fn parse_module(src: &str) -> R<Parsed> {
    let mut p = P::new(src);
    p.skip_ws()?;
    // 'use strict';
    if p.peek_str("'use strict'") || p.peek_str("\"use strict\"") {
        p.i += 12;
        p.col += 12;
        p.skip_ws()?;
        p.eat(b';');
        p.skip_ws()?;
    }
    let (l, c) = (p.line, p.col);
    let word = p.ident();
    match word.as_str() {
        "module" => {
            p.skip_ws()?;
            if !p.eat(b'.') {
                return Err(p.code("`module` used other than as `module.exports =`"));
            }
            p.skip_ws()?;
            if p.ident() != "exports" {
                return Err(p.code("`module` used other than as `module.exports =`"));
            }
            p.skip_ws()?;
            if !p.eat(b'=') || p.peek() == Some(b'=') {
                return Err(p.code("`module.exports` used other than in `module.exports = {...}`"));
            }
        }
        "export" => {
            p.skip_ws()?;
            if p.ident() != "default" {
                return Err(p.code("an `export` other than `export default {...}`"));
            }
        }
        "" if p.at_end() => {
            return Err(Failure::Syntax(l, c, "the file is empty".into()));
        }
        "" => {
            return Err(Failure::Code(
                l,
                c,
                "the file does not start with `module.exports =` or `export default`".into(),
            ));
        }
        w => return Err(Failure::Code(l, c, code_word(w))),
    }
    p.skip_ws()?;
    let value = p.value("")?;
    p.skip_ws()?;
    p.eat(b';');
    p.skip_ws()?;
    if !p.at_end() {
        return Err(p.code("more code follows `module.exports = {...}`"));
    }
    Ok(Parsed {
        value,
        positions: p.positions,
    })
}

fn code_word(w: &str) -> String {
    match w {
        "require" | "import" => format!("`{w}` loads other code"),
        "const" | "let" | "var" => format!("`{w}` declares a variable"),
        "function" => "a function".into(),
        "process" => "`process` reads the environment at run time".into(),
        _ => format!("`{w}` is a name of the program, not a literal value"),
    }
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
    col: usize,
    positions: HashMap<String, (usize, usize)>,
    /// Lists and objects open around the current position.
    depth: usize,
}

impl<'a> P<'a> {
    fn new(src: &'a str) -> P<'a> {
        let s = src.strip_prefix('\u{feff}').unwrap_or(src).as_bytes();
        P {
            s,
            i: 0,
            line: 1,
            col: 1,
            positions: HashMap::new(),
            depth: 0,
        }
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }

    fn peek_str(&self, t: &str) -> bool {
        self.s[self.i..].starts_with(t.as_bytes())
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        if b == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if b & 0xC0 != 0x80 {
            // A column is a character, not a byte: continuation bytes do not count.
            self.col += 1;
        }
        Some(b)
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn syntax(&self, msg: impl Into<String>) -> Failure {
        Failure::Syntax(self.line, self.col, msg.into())
    }

    fn code(&self, msg: impl Into<String>) -> Failure {
        Failure::Code(self.line, self.col, msg.into())
    }

    fn unexpected(&self, expected: &str) -> Failure {
        match self.peek() {
            None => self.syntax(format!("the file ends where {expected} was expected")),
            Some(b) => {
                let ch = std::str::from_utf8(&self.s[self.i..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .unwrap_or(b as char);
                if b"+-*/%(?|&.<>=!".contains(&b) {
                    self.code(format!("`{ch}` makes an expression, not a literal value"))
                } else {
                    self.syntax(format!("expected {expected}, found `{ch}`"))
                }
            }
        }
    }

    fn skip_ws(&mut self) -> R<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => {
                    self.bump();
                }
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    while let Some(b) = self.peek() {
                        if b == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    let (l, c) = (self.line, self.col);
                    self.bump();
                    self.bump();
                    loop {
                        match self.peek() {
                            None => {
                                return Err(Failure::Syntax(
                                    l,
                                    c,
                                    "a /* comment */ is not closed".into(),
                                ));
                            }
                            Some(b'*') if self.peek_at(1) == Some(b'/') => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            _ => {
                                self.bump();
                            }
                        }
                    }
                }
                // A non-breaking space or BOM inside the file: JavaScript skips them too.
                Some(0xC2) if self.peek_at(1) == Some(0xA0) => {
                    self.bump();
                    self.bump();
                }
                _ => return Ok(()),
            }
        }
    }

    fn ident(&mut self) -> String {
        let start = self.i;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80 {
                self.bump();
            } else {
                break;
            }
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn value(&mut self, path: &str) -> R<Value> {
        let v = match self.peek() {
            Some(b @ (b'{' | b'[')) => {
                if self.depth >= MAX_NESTING {
                    return Err(self.syntax(format!(
                        "lists and objects nested more than {MAX_NESTING} levels deep"
                    )));
                }
                self.depth += 1;
                let v = if b == b'{' {
                    self.object(path)
                } else {
                    self.array(path)
                };
                self.depth -= 1;
                v?
            }
            Some(b'"' | b'\'') => Value::String(self.string()?),
            Some(b'`') => Value::String(self.template()?),
            Some(b'-' | b'+' | b'.' | b'0'..=b'9') => self.number()?,
            Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b'$' || b >= 0x80 => {
                let (l, c) = (self.line, self.col);
                let w = self.ident();
                match w.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    "undefined" => Value::Null,
                    "Infinity" | "NaN" => {
                        return Err(Failure::Syntax(
                            l,
                            c,
                            format!("{w} is not a number JSON can carry"),
                        ));
                    }
                    _ => return Err(Failure::Code(l, c, code_word(&w))),
                }
            }
            _ => return Err(self.unexpected("a value")),
        };
        // `'a' + b`, `x.y`, `f()`: a literal followed by an operator is an expression.
        let save = (self.i, self.line, self.col);
        self.skip_ws()?;
        if let Some(b) = self.peek() {
            let op = b"+-*/%?|&<>.(".contains(&b) && !self.peek_str("//") && !self.peek_str("/*");
            if op && !(b == b'.' && matches!(v, Value::Number(_))) {
                return Err(self.unexpected("`,`"));
            }
        }
        (self.i, self.line, self.col) = save;
        Ok(v)
    }

    fn object(&mut self, path: &str) -> R<Value> {
        self.bump(); // {
        let mut m = Map::new();
        loop {
            self.skip_ws()?;
            if self.eat(b'}') {
                return Ok(Value::Object(m));
            }
            let (l, c) = (self.line, self.col);
            let key = match self.peek() {
                Some(b'"' | b'\'') => self.string()?,
                Some(b'`') => self.template()?,
                Some(b'0'..=b'9') => match self.number()? {
                    Value::Number(n) => n.to_string(),
                    _ => return Err(Failure::Syntax(l, c, "a key must be a name".into())),
                },
                Some(b'.') if self.peek_str("...") => {
                    return Err(self.code("`...` spreads another object"));
                }
                Some(b'[') => return Err(self.code("a computed key `[...]`")),
                Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b'$' || b >= 0x80 => {
                    self.ident()
                }
                _ => return Err(self.unexpected("a key or `}`")),
            };
            self.skip_ws()?;
            if !self.eat(b':') {
                return Err(match self.peek() {
                    Some(b',' | b'}') => {
                        Failure::Code(l, c, format!("`{key}` without `: value` is a variable"))
                    }
                    Some(b'(') => Failure::Code(l, c, format!("`{key}()` is a function")),
                    _ => self.unexpected("`:`"),
                });
            }
            self.skip_ws()?;
            let sub = join(path, &key);
            self.positions.insert(sub.clone(), (l, c));
            let v = self.value(&sub)?;
            // JSON.stringify leaves out undefined members; so does node's answer.
            if !(v.is_null() && self.s[..self.i].ends_with(b"undefined")) {
                m.insert(key, v);
            }
            self.skip_ws()?;
            if self.eat(b',') {
                continue;
            }
            if self.eat(b'}') {
                return Ok(Value::Object(m));
            }
            return Err(self.unexpected("`,` or `}`"));
        }
    }

    fn array(&mut self, path: &str) -> R<Value> {
        self.bump(); // [
        let mut v = Vec::new();
        loop {
            self.skip_ws()?;
            if self.eat(b']') {
                return Ok(Value::Array(v));
            }
            if self.peek() == Some(b',') {
                return Err(self.syntax("an empty element in a list (two commas in a row)"));
            }
            if self.peek_str("...") {
                return Err(self.code("`...` spreads another list"));
            }
            let sub = join(path, &v.len().to_string());
            self.positions.insert(sub.clone(), (self.line, self.col));
            v.push(self.value(&sub)?);
            self.skip_ws()?;
            if self.eat(b',') {
                continue;
            }
            if self.eat(b']') {
                return Ok(Value::Array(v));
            }
            return Err(self.unexpected("`,` or `]`"));
        }
    }

    fn string(&mut self) -> R<String> {
        let (l, c) = (self.line, self.col);
        let Some(q) = self.bump() else {
            return Err(self.syntax("expected a string"));
        };
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.bump() {
                None | Some(b'\n') => {
                    return Err(Failure::Syntax(l, c, "a string is not closed".into()));
                }
                Some(b) if b == q => break,
                Some(b'\\') => self.escape(&mut out)?,
                Some(b) => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| Failure::Syntax(l, c, "a string is not UTF-8".into()))
    }

    fn template(&mut self) -> R<String> {
        let (l, c) = (self.line, self.col);
        self.bump(); // `
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.bump() {
                None => return Err(Failure::Syntax(l, c, "a `template` is not closed".into())),
                Some(b'`') => break,
                Some(b'$') if self.peek() == Some(b'{') => {
                    return Err(Failure::Code(
                        self.line,
                        self.col - 1,
                        "`${...}` in a template string is code".into(),
                    ));
                }
                Some(b'\\') => self.escape(&mut out)?,
                Some(b'\r') => {}
                Some(b) => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| Failure::Syntax(l, c, "a string is not UTF-8".into()))
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> R<()> {
        let Some(e) = self.bump() else {
            return Err(self.syntax("a string ends with `\\`"));
        };
        let ch: char = match e {
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'v' => '\u{b}',
            b'0' if !self.peek().is_some_and(|b| b.is_ascii_digit()) => '\0',
            b'\n' => return Ok(()), // line continuation
            b'\r' => {
                self.eat(b'\n');
                return Ok(());
            }
            b'x' => {
                let n = self.hex(2)?;
                char::from_u32(n).ok_or_else(|| self.syntax("a bad \\x escape"))?
            }
            b'u' => {
                let n = if self.eat(b'{') {
                    let mut n: u32 = 0;
                    let mut digits = 0;
                    while let Some(b) = self.peek() {
                        if b == b'}' {
                            break;
                        }
                        let d = (b as char)
                            .to_digit(16)
                            .ok_or_else(|| self.syntax("a bad \\u{...} escape"))?;
                        n = n.saturating_mul(16).saturating_add(d);
                        digits += 1;
                        self.bump();
                    }
                    if !self.eat(b'}') || digits == 0 {
                        return Err(self.syntax("a bad \\u{...} escape"));
                    }
                    n
                } else {
                    let hi = self.hex(4)?;
                    if (0xD800..0xDC00).contains(&hi) && self.peek_str("\\u") {
                        self.bump();
                        self.bump();
                        let lo = self.hex(4)?;
                        0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF)
                    } else {
                        hi
                    }
                };
                char::from_u32(n).unwrap_or('\u{fffd}')
            }
            other => {
                // `\'`, `\"`, `\\`, `\/` and any other character stand for themselves.
                out.push(other);
                return Ok(());
            }
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn hex(&mut self, n: usize) -> R<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = self
                .peek()
                .and_then(|b| (b as char).to_digit(16))
                .ok_or_else(|| self.syntax("a bad hexadecimal escape"))?;
            v = v * 16 + d;
            self.bump();
        }
        Ok(v)
    }

    fn number(&mut self) -> R<Value> {
        let (l, c) = (self.line, self.col);
        let start = self.i;
        let neg = if self.eat(b'-') {
            true
        } else {
            self.eat(b'+');
            false
        };
        if self.peek_str("0x") || self.peek_str("0X") {
            self.bump();
            self.bump();
            let s = self.i;
            while self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
                self.bump();
            }
            let digits = std::str::from_utf8(&self.s[s..self.i]).unwrap_or("");
            let n = i64::from_str_radix(digits, 16)
                .map_err(|_| Failure::Syntax(l, c, "a bad hexadecimal number".into()))?;
            return Ok(Value::from(if neg { -n } else { n }));
        }
        if self.peek_str("Infinity") {
            return Err(Failure::Syntax(
                l,
                c,
                "Infinity is not a number JSON can carry".into(),
            ));
        }
        while let Some(b) = self.peek() {
            let sign_after_e = (b == b'-' || b == b'+')
                && matches!(self.s.get(self.i.wrapping_sub(1)), Some(b'e' | b'E'));
            if b.is_ascii_digit()
                || b == b'.'
                || b == b'e'
                || b == b'E'
                || b == b'_'
                || sign_after_e
            {
                self.bump();
            } else {
                break;
            }
        }
        let text: String = String::from_utf8_lossy(&self.s[start..self.i])
            .chars()
            .filter(|&ch| ch != '_' && ch != '+')
            .collect();
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Value::from(n));
        }
        match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(Failure::Syntax(l, c, format!("`{text}` is not a number"))),
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}/{key}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_json_with_positions() {
        let src = "{\n  \"apps\": [\n    {\"name\": \"api\", \"instances\": 4}\n  ]\n}\n";
        let p = parse_json(src).unwrap();
        assert_eq!(p.value, json!({"apps": [{"name": "api", "instances": 4}]}));
        assert_eq!(p.positions["apps"], (2, 3));
        assert_eq!(p.positions["apps/0"], (3, 5));
        assert_eq!(p.positions["apps/0/instances"], (3, 21));
    }

    #[test]
    fn the_literal_subset() {
        let src = "// ecosystem\n'use strict';\n/* apps */\nmodule.exports = {\n  apps: [{\n    name: 'api',\n    script: `server.js`,\n    args: ['--port', \"80\",],\n    env: { PORT: 3000, DEBUG: true, X: null, Y: undefined, 'a-b': -1.5e2, h: 0x10 },\n  },],\n};\n";
        let p = parse_module(src).unwrap();
        assert_eq!(
            p.value,
            json!({"apps": [{"name": "api", "script": "server.js", "args": ["--port", "80"],
                "env": {"PORT": 3000, "DEBUG": true, "X": null, "a-b": -150.0, "h": 16}}]})
        );
        assert_eq!(p.positions["apps/0/script"], (7, 5));
        let p = parse_module("export default { apps: [] }").unwrap();
        assert_eq!(p.value, json!({"apps": []}));
    }

    #[test]
    fn escapes() {
        let p = parse_json(r#"["a\nb", 'it\'s', "\u00e9\u{1F600}", "\ud83d\ude00", "é"]"#).unwrap();
        assert_eq!(p.value, json!(["a\nb", "it's", "é😀", "😀", "é"]));
    }

    #[test]
    fn code_is_recognised() {
        let code = |src: &str| match parse_module(src) {
            Err(Failure::Code(l, c, m)) => (l, c, m),
            other => panic!("{src}: {other:?}"),
        };
        assert!(
            code("const x = require('x');\nmodule.exports = {}")
                .2
                .contains("variable")
        );
        assert!(
            code("module.exports = { apps: [{ script: path.join('a') }] }")
                .2
                .contains("path")
        );
        assert!(
            code("module.exports = { port: 3000 + 1 }")
                .2
                .contains("expression")
        );
        assert!(code("module.exports = { s: `x${y}` }").2.contains("${"));
        assert!(
            code("module.exports = { env: process.env }")
                .2
                .contains("process")
        );
        assert!(
            code("module.exports = { f() { return 1 } }")
                .2
                .contains("function")
        );
        assert!(code("module.exports = { ...base }").2.contains("spread"));
        assert!(
            code("module.exports = {}\nconsole.log(1)")
                .2
                .contains("more code")
        );
        assert!(code("module.exports = () => ({})").2.contains("expression"));
        let (l, c, _) = code("module.exports = {\n  a: require('x')\n}");
        assert_eq!((l, c), (2, 6));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let bad = |src: &str| match parse_json(src) {
            Err(Failure::Syntax(l, c, m)) => (l, c, m),
            other => panic!("{src}: {other:?}"),
        };
        assert_eq!(bad("{\n  \"a\": 1\n  \"b\": 2\n}").0, 3);
        let (l, c, m) = bad("{\"a\": [1,,2]}");
        assert_eq!((l, c), (1, 10));
        assert!(m.contains("empty element"), "{m}");
        assert!(bad("{\"a\": \"x}").2.contains("not closed"));
        assert!(bad("{\"a\": 1").2.contains("ends"));
        assert!(bad("{} x").2.contains("end of the file"));
        assert!(bad("/* x").2.contains("comment"));
        assert!(matches!(parse_module(""), Err(Failure::Syntax(..))));
    }

    /// Runs `f` with the stack of a main thread (8 MB), where the client reads files; a
    /// test thread has 2 MB.
    pub(crate) fn on_main_sized_stack(f: fn()) {
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        on_main_sized_stack(deep_nesting);
    }

    fn deep_nesting() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse_json(&nest(MAX_NESTING)).is_ok());
        for src in [
            nest(MAX_NESTING + 1),
            nest(20_000),
            "{\"a\":".repeat(20_000),
        ] {
            match parse_json(&src) {
                Err(Failure::Syntax(1, _, m)) => {
                    assert!(m.contains("nested more than 1000 levels"), "{m}")
                }
                other => panic!("{other:?}"),
            }
        }
        let module = format!("module.exports = {{a: {}}}", nest(20_000));
        assert!(matches!(parse_module(&module), Err(Failure::Syntax(..))));
    }
}
