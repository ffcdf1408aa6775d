//! Strict JSON (RFC 8259) into a flat tape, accepting exactly what the reference's reader
//! (orjson 3.x) accepts, so a line is `bad_json` in both parsers or in neither:
//!
//! - the whole text must be valid UTF-8 (no BOM); only space, tab, CR and LF are whitespace;
//! - strings: no raw control character below 0x20; escapes `\" \\ \/ \b \f \n \r \t \uXXXX`,
//!   a `\u` surrogate only as a high-low pair;
//! - numbers: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`; an integer in
//!   `[-2^63, 2^64)` is an int, any other number a float, and a float that rounds to infinity is
//!   an error;
//! - at most 1024 nested arrays and objects; nothing but whitespace after the value.
//!
//! Objects keep every member in text order; a lookup takes the *last* member of a name, as a
//! Python dict built from the text does. Values are spans into the text: nothing is copied or
//! decoded unless a handler asks.

use std::borrow::Cow;

/// Deepest nesting of arrays and objects orjson accepts.
pub const MAX_DEPTH: usize = 1024;

/// Bytes that end a plain run inside a string: the quote, a backslash, a control character.
const STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        table[c] = true;
        c += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// One value of the tape. Containers are followed by their members; `end` is the index of the
/// first node after the whole container.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    /// A JSON integer in `[-2^63, 2^64)`: a Python `int`.
    Int(i128),
    /// Any other number: a Python `float` (its value is never needed).
    Float,
    /// The text between the quotes; `escaped` when it holds a backslash escape.
    Str {
        start: usize,
        end: usize,
        escaped: bool,
    },
    Array {
        len: usize,
        end: usize,
    },
    /// Members as (key `Str`, value) node pairs.
    Object {
        len: usize,
        end: usize,
    },
}

/// The text is not JSON that orjson would read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalid;

/// A parsed document: the text and its tape. The root is node 0.
pub struct Doc<'a> {
    pub text: &'a str,
    pub nodes: &'a [Node],
}

/// Parse `bytes` into `tape` (cleared first). `Err(Invalid)` when orjson would raise.
pub fn parse<'a>(bytes: &'a [u8], tape: &'a mut Vec<Node>) -> Result<Doc<'a>, Invalid> {
    let text = std::str::from_utf8(bytes).map_err(|_| Invalid)?;
    tape.clear();
    let mut p = Parser {
        b: bytes,
        pos: 0,
        nodes: tape,
        depth: 0,
    };
    p.skip_ws();
    p.value()?;
    p.skip_ws();
    if p.pos != bytes.len() {
        return Err(Invalid);
    }
    Ok(Doc { text, nodes: tape })
}

struct Parser<'a, 'b> {
    b: &'a [u8],
    pos: usize,
    nodes: &'b mut Vec<Node>,
    depth: usize,
}

impl Parser<'_, '_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<(), Invalid> {
        match self.peek().ok_or(Invalid)? {
            b'"' => self.string(),
            b'{' => self.object(),
            b'[' => self.array(),
            b't' => self.literal(b"true", Node::Bool(true)),
            b'f' => self.literal(b"false", Node::Bool(false)),
            b'n' => self.literal(b"null", Node::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Invalid),
        }
    }

    fn literal(&mut self, word: &[u8], node: Node) -> Result<(), Invalid> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            self.nodes.push(node);
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    fn enter(&mut self) -> Result<usize, Invalid> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Invalid);
        }
        self.pos += 1; // the opening bracket
        self.nodes.push(Node::Null); // replaced once the container is closed
        Ok(self.nodes.len() - 1)
    }

    fn object(&mut self) -> Result<(), Invalid> {
        let at = self.enter()?;
        let mut len = 0;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return Err(Invalid);
                }
                self.string()?;
                self.skip_ws();
                if self.peek() != Some(b':') {
                    return Err(Invalid);
                }
                self.pos += 1;
                self.skip_ws();
                self.value()?;
                len += 1;
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                    }
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(Invalid),
                }
            }
        }
        self.depth -= 1;
        let end = self.nodes.len();
        self.nodes[at] = Node::Object { len, end };
        Ok(())
    }

    fn array(&mut self) -> Result<(), Invalid> {
        let at = self.enter()?;
        let mut len = 0;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                self.value()?;
                len += 1;
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                    }
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(Invalid),
                }
            }
        }
        self.depth -= 1;
        let end = self.nodes.len();
        self.nodes[at] = Node::Array { len, end };
        Ok(())
    }

    fn string(&mut self) -> Result<(), Invalid> {
        self.pos += 1; // the opening quote
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Plain bytes run until a quote, a backslash or a control character.
            let rest = &self.b[self.pos..];
            let run = rest
                .iter()
                .position(|&c| STRING_STOP[usize::from(c)])
                .ok_or(Invalid)?;
            self.pos += run;
            match self.b[self.pos] {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return Err(Invalid), // a raw control character
            }
        }
        self.nodes.push(Node::Str {
            start,
            end: self.pos,
            escaped,
        });
        self.pos += 1; // the closing quote
        Ok(())
    }

    fn escape(&mut self) -> Result<(), Invalid> {
        match self.b.get(self.pos + 1).ok_or(Invalid)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.pos += 2;
                Ok(())
            }
            b'u' => {
                let unit = hex4(self.b, self.pos + 2)?;
                self.pos += 6;
                match unit {
                    0xD800..=0xDBFF => {
                        // A high surrogate must be followed by an escaped low one.
                        if self.b.get(self.pos) != Some(&b'\\')
                            || self.b.get(self.pos + 1) != Some(&b'u')
                        {
                            return Err(Invalid);
                        }
                        let low = hex4(self.b, self.pos + 2)?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(Invalid);
                        }
                        self.pos += 6;
                        Ok(())
                    }
                    0xDC00..=0xDFFF => Err(Invalid),
                    _ => Ok(()),
                }
            }
            _ => Err(Invalid),
        }
    }

    fn number(&mut self) -> Result<(), Invalid> {
        let start = self.pos;
        let neg = self.peek() == Some(b'-');
        if neg {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(Invalid); // a leading zero
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Invalid),
        }
        let int_end = self.pos;
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(Invalid);
            }
            self.digits();
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(Invalid);
            }
            self.digits();
            integer = false;
        }
        if integer {
            if let Some(v) = int_value(&self.b[int_start..int_end], neg) {
                self.nodes.push(Node::Int(v));
                return Ok(());
            }
        }
        // A float, or an integer beyond the 64-bit range (a float in orjson too).
        let text = std::str::from_utf8(&self.b[start..self.pos]).map_err(|_| Invalid)?;
        let value: f64 = text.parse().map_err(|_| Invalid)?;
        if value.is_infinite() {
            return Err(Invalid);
        }
        self.nodes.push(Node::Float);
        Ok(())
    }

    #[inline]
    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

fn hex4(b: &[u8], at: usize) -> Result<u32, Invalid> {
    let digits = b.get(at..at + 4).ok_or(Invalid)?;
    let mut v = 0u32;
    for &d in digits {
        v = v * 16 + (d as char).to_digit(16).ok_or(Invalid)?;
    }
    Ok(v)
}

/// The integer in `[-2^63, 2^64)`, or None (then it is a float).
fn int_value(digits: &[u8], neg: bool) -> Option<i128> {
    if digits.len() > 20 {
        return None;
    }
    let mut v: i128 = 0;
    for &d in digits {
        v = v * 10 + i128::from(d - b'0');
    }
    let v = if neg { -v } else { v };
    (i128::from(i64::MIN)..=i128::from(u64::MAX))
        .contains(&v)
        .then_some(v)
}

/// The member names the message reader looks up, resolved in one pass over an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Stream,
    Data,
    /// `e`: the event type.
    Event,
    /// `E`: event time.
    EventTime,
    /// `T`: transaction time.
    TxnTime,
    Symbol,
    /// `U`: first update id.
    FirstId,
    /// `u`: last update id.
    LastId,
    /// `pu`: the previous diff's `u`.
    PrevId,
    /// `b`: bid levels, or the bookTicker's bid price.
    Bid,
    /// `a`: ask levels, or the bookTicker's ask price.
    Ask,
    /// `B`: the bookTicker's bid size.
    BidQty,
    /// `A`: the bookTicker's ask size.
    AskQty,
    /// `t`: trade id.
    TradeId,
    Price,
    Qty,
    /// `m`: the buyer is the maker.
    BuyerMaker,
    LastUpdateId,
    Bids,
    Asks,
}

const N_KEYS: usize = 20;

fn key_of(name: &[u8]) -> Option<Key> {
    Some(match name {
        b"stream" => Key::Stream,
        b"data" => Key::Data,
        b"e" => Key::Event,
        b"E" => Key::EventTime,
        b"T" => Key::TxnTime,
        b"s" => Key::Symbol,
        b"U" => Key::FirstId,
        b"u" => Key::LastId,
        b"pu" => Key::PrevId,
        b"b" => Key::Bid,
        b"a" => Key::Ask,
        b"B" => Key::BidQty,
        b"A" => Key::AskQty,
        b"t" => Key::TradeId,
        b"p" => Key::Price,
        b"q" => Key::Qty,
        b"m" => Key::BuyerMaker,
        b"lastUpdateId" => Key::LastUpdateId,
        b"bids" => Key::Bids,
        b"asks" => Key::Asks,
        _ => return None,
    })
}

/// The value node of the last member of each known name of one object.
pub struct Fields {
    slot: [usize; N_KEYS],
}

const ABSENT: usize = usize::MAX;

impl Fields {
    /// `key in d`.
    #[inline]
    pub fn member(&self, key: Key) -> Option<usize> {
        let at = self.slot[key as usize];
        (at != ABSENT).then_some(at)
    }
}

impl<'a> Doc<'a> {
    /// The known members of the object at `obj` (none for another value).
    pub fn fields(&self, obj: usize) -> Fields {
        let mut slot = [ABSENT; N_KEYS];
        if let Node::Object { len, .. } = self.nodes[obj] {
            let mut k = obj + 1;
            for _ in 0..len {
                let key = match self.nodes[k] {
                    Node::Str {
                        start,
                        end,
                        escaped: false,
                    } => key_of(&self.text.as_bytes()[start..end]),
                    _ => self.str_at(k).and_then(|name| key_of(name.as_bytes())),
                };
                if let Some(key) = key {
                    slot[key as usize] = k + 1; // a later member of the name wins
                }
                k = self.skip(k + 1);
            }
        }
        Fields { slot }
    }

    /// Python `d.get(key)`: None for a missing member and for a `null` one alike.
    #[inline]
    pub fn field(&self, f: &Fields, key: Key) -> Option<usize> {
        f.member(key)
            .filter(|&v| !matches!(self.nodes[v], Node::Null))
    }

    /// Index of the first node after the value at `i` (and its members).
    #[inline]
    pub fn skip(&self, i: usize) -> usize {
        match self.nodes[i] {
            Node::Array { end, .. } | Node::Object { end, .. } => end,
            _ => i + 1,
        }
    }

    /// The value of the last member named `key` of the object at `obj` (Python `d[key]`).
    pub fn member(&self, obj: usize, key: &str) -> Option<usize> {
        let Node::Object { len, .. } = self.nodes[obj] else {
            return None;
        };
        let mut found = None;
        let mut k = obj + 1;
        for _ in 0..len {
            if self.str_eq(k, key) {
                found = Some(k + 1);
            }
            k = self.skip(k + 1);
        }
        found
    }

    /// Python `d.get(key)`: None for a missing member and for a `null` one alike.
    #[inline]
    pub fn get(&self, obj: usize, key: &str) -> Option<usize> {
        self.member(obj, key)
            .filter(|&v| !matches!(self.nodes[v], Node::Null))
    }

    /// The node indices of an array's items.
    pub fn items(&self, arr: usize) -> impl Iterator<Item = usize> + '_ {
        let len = match self.nodes[arr] {
            Node::Array { len, .. } => len,
            _ => 0,
        };
        let mut next = arr + 1;
        (0..len).map(move |_| {
            let at = next;
            next = self.skip(at);
            at
        })
    }

    /// The decoded string at `i`, or None when the node is not a string.
    pub fn str_at(&self, i: usize) -> Option<Cow<'a, str>> {
        match self.nodes[i] {
            Node::Str {
                start,
                end,
                escaped,
            } => {
                let raw = &self.text[start..end];
                Some(if escaped {
                    Cow::Owned(unescape(raw))
                } else {
                    Cow::Borrowed(raw)
                })
            }
            _ => None,
        }
    }

    /// Whether the node at `i` is the string `s` (Python `value == s`).
    #[inline]
    pub fn str_eq(&self, i: usize, s: &str) -> bool {
        match self.nodes[i] {
            Node::Str {
                start,
                end,
                escaped: false,
            } => &self.text[start..end] == s,
            Node::Str { .. } => self.str_at(i).is_some_and(|v| v == s),
            _ => false,
        }
    }
}

/// Decode the escapes of a string the parser accepted.
fn unescape(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < b.len() {
        let Some(off) = raw[i..].find('\\') else {
            out.push_str(&raw[i..]);
            break;
        };
        out.push_str(&raw[i..i + off]);
        i += off;
        let c = match b[i + 1] {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = hex4(b, i + 2).unwrap_or(0xFFFD);
                i += 6;
                let code = if (0xD800..=0xDBFF).contains(&unit) {
                    let low = hex4(b, i + 2).unwrap_or(0xDC00);
                    i += 6;
                    0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    unit
                };
                out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                continue;
            }
            other => other as char, // " \ /
        };
        out.push(c);
        i += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> bool {
        let mut tape = Vec::new();
        parse(text.as_bytes(), &mut tape).is_ok()
    }

    #[test]
    fn accepts_what_orjson_accepts() {
        for text in [
            "{}",
            " {\"a\" : 1 }\r",
            "[1, -0, 0.5, 1e5, 1E+2, -1.5e-3, true, false, null, \"x\"]",
            "{\"a\":\"\\ud83d\\ude00\\u0000\\/\"}",
            "{\"a\":18446744073709551615}",
            "{\"a\":18446744073709551616}",
            "{\"a\":1e-400}",
            "\"\u{7f}\u{ffff}\"",
        ] {
            assert!(ok(text), "{text}");
        }
    }

    #[test]
    fn refuses_what_orjson_refuses() {
        for text in [
            "",
            " ",
            "{",
            "{}x",
            "{}\u{b}",
            "\u{feff}{}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":+1}",
            "{\"a\":1e}",
            "{\"a\":NaN}",
            "{\"a\":1e400}",
            "{\"a\":-1e400}",
            "{\"a\":[1,]}",
            "{\"a\":1,}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\udc00\"}",
            "{\"a\":\"\\ud83d\\u0041\"}",
            "{\"a\":\"\t\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":tru}",
            "{\"a\" 1}",
        ] {
            assert!(!ok(text), "{text:?}");
        }
        let big = format!("{{\"a\":{}}}", "1".repeat(400));
        assert!(!ok(&big));
        let mut tape = Vec::new();
        assert!(parse(b"{\"a\":\"\xff\"}", &mut tape).is_err());
    }

    #[test]
    fn depth_limit_is_1024() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(ok(&deep(1024)));
        assert!(!ok(&deep(1025)));
    }

    #[test]
    fn ints_floats_and_last_member_wins() {
        let mut tape = Vec::new();
        let text = br#"{"a":1,"b":-9223372036854775809,"a":{"c":[2,"x"]},"\u0064":null}"#;
        let doc = parse(text, &mut tape).unwrap();
        let a = doc.member(0, "a").unwrap();
        assert!(matches!(doc.nodes[a], Node::Object { len: 1, .. }));
        let b = doc.member(0, "b").unwrap();
        assert_eq!(doc.nodes[b], Node::Float);
        assert!(doc.member(0, "d").is_some() && doc.get(0, "d").is_none());
        let c = doc.get(a, "c").unwrap();
        let items: Vec<usize> = doc.items(c).collect();
        assert_eq!(doc.nodes[items[0]], Node::Int(2));
        assert!(doc.str_eq(items[1], "x"));
    }

    #[test]
    fn unescape_decodes_every_escape() {
        let mut tape = Vec::new();
        let doc = parse(br#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00z""#, &mut tape).unwrap();
        assert_eq!(
            doc.str_at(0).unwrap(),
            "a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1f600}z"
        );
    }
}
