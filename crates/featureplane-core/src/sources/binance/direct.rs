//! The direct read of a combined-stream line in Binance's own shape, without the tape.
//!
//! Nearly every line of a capture is `{"stream":"<name>","data":{...}}` holding a depth diff,
//! a trade or a book ticker, written the same way each time: ASCII, no whitespace, no escapes,
//! integers for ids and times, plain decimal strings for prices and sizes. [`Reader::direct`]
//! reads such a line in one pass and gives the message the tape reader ([`super::json`], then
//! [`Reader::message`]) gives. On anything else (another byte, a member seen twice, a null, a
//! float, a nested value, a non-ASCII byte, and every fault the reference would skip the line
//! for) it returns None before any effect, and the line goes to the tape reader, which decides.
//! So every skip is named by the tape reader; this one only has to agree on what it accepts:
//!
//! - its grammar is a subset of JSON over ASCII, so orjson accepts all it accepts, with the
//!   same values (an integer of at most 19 digits, a string without escapes);
//! - a member it reads appears once, so "the last member of a name" is that one;
//! - it requires what the reference's handlers require and refuses where they would;
//! - prices and sizes go through the same [`short_steps`] as the tape reader's, and only a
//!   whole number of steps in range is taken.
//!
//! `cargo test` and the fuzz targets build with debug assertions, under which every line taken
//! here is read by the tape reader too and the two must agree (`Chain::line_of`).

use super::decimal::{digit_run, quoted_prefix, short_steps, Grid, Plain};
use super::message::{BookTicker, DiffHead, Levels, Message, Reader, StreamKind};

const I64_MAX: u64 = i64::MAX as u64;
/// Largest event time in ms whose ns fits int64.
const MS_MAX: u64 = I64_MAX / 1_000_000;

/// Bytes of a string read here: printable ASCII but the quote and the backslash.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0x20;
    while c < 0x7f {
        table[c] = true;
        c += 1;
    }
    table[b'"' as usize] = false;
    table[b'\\' as usize] = false;
    table
};

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn byte(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.byte()? == c).then(|| self.at += 1)
    }

    #[inline]
    fn tag(&mut self, s: &[u8]) -> Option<()> {
        self.b
            .get(self.at..)?
            .starts_with(s)
            .then(|| self.at += s.len())
    }

    /// `,` before another member or item, or the closing bracket: whether another follows.
    #[inline]
    fn next(&mut self, close: u8) -> Option<bool> {
        let c = self.byte()?;
        self.at += 1;
        match c {
            b',' => Some(true),
            _ if c == close => Some(false),
            _ => None,
        }
    }

    /// A string of [`PLAIN`] bytes, from its opening quote: the bytes between the quotes.
    #[inline]
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.at;
        let len = self.b[start..]
            .iter()
            .position(|&c| !PLAIN[usize::from(c)])?;
        self.at = start + len;
        self.eat(b'"')?;
        Some(&self.b[start..start + len])
    }

    /// `0|[1-9][0-9]*` of at most 19 digits (below 2^64). What follows is the caller's: a
    /// fraction or an exponent (a float) is not a `,` or a bracket, and ends the read there.
    #[inline]
    fn uint(&mut self) -> Option<u64> {
        let (v, n) = digit_run(self.b, self.at);
        if n == 0 || n > 19 || (n > 1 && self.b[self.at] == b'0') {
            return None;
        }
        self.at += n;
        Some(v)
    }

    /// An int field: a uint within int64.
    #[inline]
    fn id(&mut self) -> Option<u64> {
        self.uint().filter(|&v| v <= I64_MAX)
    }

    /// A price or size string: its whole number of steps on `grid`, nothing else.
    #[inline]
    fn decimal(&mut self, grid: Grid, positive: bool) -> Option<i64> {
        self.eat(b'"')?;
        let (short, len) = quoted_prefix(self.b, self.at)?;
        self.at += len + 1; // and the closing quote
        match short_steps(short, grid, positive)? {
            Plain::Steps(v) => Some(v),
            Plain::Refused(_) | Plain::NotPlain => None,
        }
    }

    /// A member name: the usual one or two letters without a scan, others as any string.
    #[inline]
    fn key(&mut self) -> Option<&'a [u8]> {
        let b = self.b;
        let at = self.at;
        if let Some(&[b'"', k, c, d]) = b.get(at..at + 4) {
            if PLAIN[usize::from(k)] {
                if c == b'"' {
                    self.at += 3;
                    return Some(&b[at + 1..at + 2]);
                }
                if d == b'"' && PLAIN[usize::from(c)] {
                    self.at += 4;
                    return Some(&b[at + 1..at + 3]);
                }
            }
        }
        self.string()
    }

    /// A member this reader does not use: a plain string, a uint, `true`, `false` or `null`.
    fn other(&mut self) -> Option<()> {
        match self.byte()? {
            b'"' => self.string().map(drop),
            b'0'..=b'9' => self.uint().map(drop),
            b't' => self.tag(b"true"),
            b'f' => self.tag(b"false"),
            b'n' => self.tag(b"null"),
            _ => None,
        }
    }

    fn boolean(&mut self) -> Option<bool> {
        match self.byte()? {
            b't' => self.tag(b"true").map(|()| true),
            b'f' => self.tag(b"false").map(|()| false),
            _ => None,
        }
    }
}

/// Set a member once: a second one of the name gives the line to the tape reader.
#[inline]
fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    slot.is_none().then(|| *slot = Some(v))
}

/// The members of a `data` object read so far.
#[derive(Default)]
struct Members<'a> {
    event: Option<&'a [u8]>,
    event_time: Option<u64>,
    txn_time: Option<u64>,
    symbol: Option<&'a [u8]>,
    first: Option<u64>,
    last: Option<u64>,
    prev: Option<u64>,
    trade_id: Option<u64>,
    buyer_maker: Option<bool>,
    /// A trade's price and size.
    px: Option<i64>,
    qty: Option<i64>,
    /// A book ticker's bid and ask.
    bid_px: Option<i64>,
    bid_qty: Option<i64>,
    ask_px: Option<i64>,
    ask_qty: Option<i64>,
    /// A diff's bid and ask levels were read (bids first) into [`Levels`].
    bids: bool,
    asks: bool,
}

impl Reader<'_> {
    /// The message of `json` when it has one of Binance's usual shapes, else None (then the
    /// tape reader decides). Only `levels` changes, and only for a diff.
    pub fn direct(&mut self, json: &[u8], local: i64, levels: &mut Levels) -> Option<Message> {
        let mut c = Cursor { b: json, at: 0 };
        c.tag(b"{\"stream\":")?;
        let kind = (self.stream_kind)(c.string()?);
        if matches!(kind, StreamKind::Unknown | StreamKind::OtherSymbol) {
            return None;
        }
        c.tag(b",\"data\":{")?;
        let m = self.members(&mut c, kind, levels)?;
        c.eat(b'}')?;
        if c.at != json.len() {
            return None;
        }
        if m.symbol.is_some_and(|s| s != self.symbol.as_bytes()) {
            return None; // symbol_mismatch
        }
        let src = match m.txn_time.or(m.event_time) {
            None => local,
            Some(ms) if ms <= MS_MAX => ms as i64 * 1_000_000,
            Some(_) => return None,
        };
        match kind {
            StreamKind::Diff if m.event == Some(b"depthUpdate") => {
                let (first, last) = (m.first? as i64, m.last? as i64);
                if first > last || !(m.bids && m.asks) {
                    return None;
                }
                // Spot has no `pu`: its continuity rule is U == previous u + 1.
                let prev = if self.usdm { m.prev? as i64 } else { first - 1 };
                Some(Message::Diff(DiffHead {
                    first,
                    last,
                    prev,
                    src,
                }))
            }
            StreamKind::Trade if m.event == Some(b"trade") => Some(Message::Trade {
                trade_id: m.trade_id? as i64,
                buyer_maker: m.buyer_maker?,
                px: m.px?,
                qty: m.qty?,
                src,
            }),
            StreamKind::BookTicker if m.event.is_none() || m.event == Some(b"bookTicker") => {
                Some(Message::BookTicker(BookTicker {
                    update_id: m.last? as i64,
                    bid_px: m.bid_px?,
                    bid_qty: m.bid_qty?,
                    ask_px: m.ask_px?,
                    ask_qty: m.ask_qty?,
                    src,
                }))
            }
            _ => None,
        }
    }

    /// The members of the `data` object after its `{`, up to and with its `}`; which names
    /// are read depends on the stream's kind, the others are passed over.
    fn members<'a>(
        &mut self,
        c: &mut Cursor<'a>,
        kind: StreamKind,
        levels: &mut Levels,
    ) -> Option<Members<'a>> {
        let mut m = Members::default();
        let (px, qty) = (self.px, self.qty);
        loop {
            let key = c.key()?;
            c.eat(b':')?;
            match (kind, key) {
                (_, b"e") => once(&mut m.event, c.string()?)?,
                (_, b"E") => once(&mut m.event_time, c.uint()?)?,
                (_, b"T") => once(&mut m.txn_time, c.uint()?)?,
                (_, b"s") => once(&mut m.symbol, c.string()?)?,
                (StreamKind::Diff | StreamKind::BookTicker, b"u") => once(&mut m.last, c.id()?)?,
                (StreamKind::Diff, b"U") => once(&mut m.first, c.id()?)?,
                (StreamKind::Diff, b"pu") => once(&mut m.prev, c.id()?)?,
                (StreamKind::Diff, b"b") if !m.bids && !m.asks => {
                    levels.px.clear();
                    levels.qty.clear();
                    read_levels(c, px, qty, levels)?;
                    levels.n_bids = levels.px.len();
                    m.bids = true;
                }
                (StreamKind::Diff, b"a") if m.bids && !m.asks => {
                    read_levels(c, px, qty, levels)?;
                    m.asks = true;
                }
                (StreamKind::Trade, b"t") => once(&mut m.trade_id, c.id()?)?,
                (StreamKind::Trade, b"m") => once(&mut m.buyer_maker, c.boolean()?)?,
                (StreamKind::Trade, b"p") => once(&mut m.px, c.decimal(px, true)?)?,
                (StreamKind::Trade, b"q") => once(&mut m.qty, c.decimal(qty, false)?)?,
                (StreamKind::BookTicker, b"b") => once(&mut m.bid_px, c.decimal(px, true)?)?,
                (StreamKind::BookTicker, b"B") => once(&mut m.bid_qty, c.decimal(qty, false)?)?,
                (StreamKind::BookTicker, b"a") => once(&mut m.ask_px, c.decimal(px, true)?)?,
                (StreamKind::BookTicker, b"A") => once(&mut m.ask_qty, c.decimal(qty, false)?)?,
                (StreamKind::Diff, b"b" | b"a") => return None, // out of order, or twice
                _ => c.other()?,
            }
            if !c.next(b'}')? {
                return Some(m);
            }
        }
    }
}

/// `[["px","qty"],...]`, each level exactly two plain decimal strings, appended to `levels`.
fn read_levels(c: &mut Cursor<'_>, px: Grid, qty: Grid, levels: &mut Levels) -> Option<()> {
    c.eat(b'[')?;
    if c.byte()? == b']' {
        c.at += 1;
        return Some(());
    }
    loop {
        c.eat(b'[')?;
        let p = c.decimal(px, true)?;
        c.eat(b',')?;
        let q = c.decimal(qty, false)?;
        c.eat(b']')?;
        levels.px.push(p);
        levels.qty.push(q);
        if !c.next(b']')? {
            return Some(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::binance::json;
    use crate::sources::binance::message::classify;
    use crate::sources::binance::{PlainOnly, Reason};

    const USUAL: [(&str, bool); 5] = [
        (
            r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161256299,"T":1723161256298,"s":"BTCUSDT","U":5123107832006,"u":5123107837557,"pu":5123107831937,"b":[["58710.20","0.014"],["61800.20","2.507"]],"a":[["61800.30","3.330"],["65880.70","15.918"]]}}"#,
            true,
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}"#,
            true,
        ),
        (
            r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256313}}"#,
            true,
        ),
        (
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161256299,"s":"BTCUSDT","U":5123107832006,"u":5123107837557,"b":[["61800.01000000","0.00100000"]],"a":[]}}"#,
            false,
        ),
        (
            r#"{"stream":"btcusdt@bookTicker","data":{"u":51231078,"s":"BTCUSDT","b":"61800.01000000","B":"2.50700000","a":"61800.02000000","A":"0.00000000"}}"#,
            false,
        ),
    ];

    /// The direct reader's message, and the tape reader's, of one line.
    fn both(json_text: &[u8], usdm: bool) -> (Option<Message>, Result<Message, Reason>) {
        let mut kind = |name: &[u8]| {
            std::str::from_utf8(name).map_or(StreamKind::Unknown, |n| classify(n, "BTCUSDT"))
        };
        let mut reader = Reader {
            symbol: "BTCUSDT",
            usdm,
            px: Grid { units: 1, exp: 2 },
            qty: Grid { units: 1, exp: 8 },
            resolver: &mut PlainOnly,
            stream_kind: &mut kind,
        };
        let (mut direct_levels, mut tape_levels) = (Levels::default(), Levels::default());
        let direct = reader.direct(json_text, 7, &mut direct_levels);
        let mut tape = Vec::new();
        let tape_message = match json::parse(json_text, &mut tape) {
            Ok(doc) => reader.message(&doc, 7, &mut tape_levels),
            Err(_) => Err(Reason::BadJson),
        };
        if let Some(Message::Diff(_)) = direct {
            assert_eq!(
                (&direct_levels.px, &direct_levels.qty, direct_levels.n_bids),
                (&tape_levels.px, &tape_levels.qty, tape_levels.n_bids)
            );
        }
        (direct, tape_message)
    }

    #[test]
    fn the_usual_shapes_are_read_directly() {
        for (line, usdm) in USUAL {
            let (direct, tape) = both(line.as_bytes(), usdm);
            assert!(direct.is_some(), "{line}");
            assert_eq!(Ok(direct.unwrap()), tape, "{line}");
        }
    }

    /// Every line one byte away from a usual one (a byte dropped, doubled or replaced by one of
    /// the bytes that change JSON's meaning) is either read the same by both readers or left
    /// to the tape reader.
    #[test]
    fn a_line_near_the_usual_ones_is_read_the_same_or_left_to_the_tape() {
        let bytes = b" \t\"\\/0159.-+eE,:{}[]ntfuAbsT\x00\x7f\x80\xc3\xff";
        let (mut taken, mut left) = (0, 0);
        for (line, usdm) in USUAL {
            let line = line.as_bytes();
            for at in 0..line.len() {
                let mut variants = vec![
                    [&line[..at], &line[at + 1..]].concat(),
                    [&line[..=at], &line[at..]].concat(),
                ];
                for &b in bytes {
                    let mut v = line.to_vec();
                    v[at] = b;
                    variants.push(v);
                }
                for v in variants {
                    match both(&v, usdm) {
                        (Some(direct), tape) => {
                            assert_eq!(Ok(direct), tape, "{}", String::from_utf8_lossy(&v));
                            taken += 1;
                        }
                        (None, _) => left += 1,
                    }
                }
            }
        }
        assert!(taken > 1000 && left > 1000, "{taken} {left}");
    }
}
