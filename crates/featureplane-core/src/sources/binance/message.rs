//! One recorder line -> one parsed message, or the reason it is skipped.
//!
//! Every check is the reference's (`featureplane.sources.binance_sync.SymbolChain._line` and
//! its handlers), in the reference's order: when a line has several faults, the first one the
//! reference would meet names the skip. Python semantics carried over: `d.get(k)` treats a
//! `null` member as missing, `k in d` does not; an `int` field refuses booleans and floats;
//! only lists and objects are unhashable (a `TypeError`, so `bad_message`, before any grid
//! conversion of the same column).

use super::decimal::{steps, Field, Grid, Plain, Resolve};
use super::json::{Doc, Fields, Key, Node};
use super::Reason;

const I64_MAX: i128 = i64::MAX as i128;
const MS_MAX: i128 = I64_MAX / 1_000_000;

/// Message-level fields of a depth diff (its levels are in [`Levels`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffHead {
    pub first: i64,
    pub last: i64,
    pub prev: i64,
    pub src: i64,
}

/// A `bookTicker`: update id, bid px/qty, ask px/qty, source time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookTicker {
    pub update_id: i64,
    pub bid_px: i64,
    pub bid_qty: i64,
    pub ask_px: i64,
    pub ask_qty: i64,
    pub src: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// Levels in [`Levels`].
    Diff(DiffHead),
    /// `lastUpdateId` and source time; levels in [`Levels`].
    Snapshot {
        last_update_id: i64,
        src: i64,
    },
    Trade {
        trade_id: i64,
        /// `m`: the buyer was the maker, so the aggressor sold.
        buyer_maker: bool,
        px: i64,
        qty: i64,
        src: i64,
    },
    BookTicker(BookTicker),
}

/// Levels of the last diff or snapshot parsed: bids then asks.
#[derive(Default)]
pub struct Levels {
    pub px: Vec<i64>,
    pub qty: Vec<i64>,
    pub n_bids: usize,
    /// (price node, size node) of each level: scratch kept between messages.
    pairs: Vec<(usize, usize)>,
}

/// What a stream name says for the file's symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    Diff,
    Trade,
    BookTicker,
    Unknown,
    OtherSymbol,
}

/// The stream name's kind: `<symbol>@depth[@...]`, `@trade`, `@bookTicker`, else unknown.
pub fn classify(stream: &str, symbol: &str) -> StreamKind {
    let (prefix, rest) = stream.split_once('@').unwrap_or((stream, ""));
    let same = if prefix.is_ascii() {
        prefix.eq_ignore_ascii_case(symbol) && symbol.bytes().all(|c| !c.is_ascii_lowercase())
    } else {
        prefix.to_uppercase() == symbol // Python's str.upper(): full Unicode case mapping
    };
    if !same {
        StreamKind::OtherSymbol
    } else if rest == "depth" || rest.starts_with("depth@") {
        StreamKind::Diff // depth5/10/20 are partial-book snapshots: not read
    } else if rest == "trade" {
        StreamKind::Trade
    } else if rest == "bookTicker" {
        StreamKind::BookTicker
    } else {
        StreamKind::Unknown
    }
}

/// Reads the messages of one symbol's lines.
pub struct Reader<'r> {
    pub symbol: &'r str,
    pub usdm: bool,
    pub px: Grid,
    pub qty: Grid,
    pub resolver: &'r mut dyn Resolve,
    /// The kind of a stream name's text (cached: a capture has a few names).
    pub stream_kind: &'r mut dyn FnMut(&[u8]) -> StreamKind,
}

type Parsed<T> = Result<T, Reason>;

impl Reader<'_> {
    /// The message of a JSON document (root node 0), levels into `levels`.
    pub fn message(&mut self, doc: &Doc<'_>, local: i64, levels: &mut Levels) -> Parsed<Message> {
        if !matches!(doc.nodes[0], Node::Object { .. }) {
            return Err(Reason::BadJson);
        }
        let root = doc.fields(0);
        if let Some(stream) = doc.field(&root, Key::Stream) {
            let name = doc.str_at(stream).ok_or(Reason::BadMessage)?;
            let kind = (self.stream_kind)(name.as_bytes());
            let data = match doc.field(&root, Key::Data) {
                Some(d) if matches!(doc.nodes[d], Node::Object { .. }) => doc.fields(d),
                _ => return Err(Reason::BadMessage),
            };
            let event = doc.field(&data, Key::Event);
            let is = |name: &str| event.is_some_and(|e| doc.str_eq(e, name));
            return match kind {
                StreamKind::BookTicker if event.is_none() || is("bookTicker") => {
                    self.book_ticker(doc, &data, local)
                }
                StreamKind::Diff if is("depthUpdate") => self.diff(doc, &data, local, levels),
                StreamKind::Trade if is("trade") => self.trade(doc, &data, local),
                StreamKind::OtherSymbol => Err(Reason::SymbolMismatch),
                StreamKind::Unknown => Err(Reason::UnknownStream),
                _ => Err(Reason::UnknownEvent),
            };
        }
        // No combined-stream wrapper: the REST snapshot, or a raw payload.
        if root.member(Key::LastUpdateId).is_some() {
            return self.snapshot(doc, &root, local, levels);
        }
        let event = doc.field(&root, Key::Event);
        let is = |name: &str| event.is_some_and(|e| doc.str_eq(e, name));
        let book_ticker_keys = [Key::LastId, Key::Symbol, Key::Bid, Key::Ask];
        if is("depthUpdate") {
            self.diff(doc, &root, local, levels)
        } else if is("trade") {
            self.trade(doc, &root, local)
        } else if is("bookTicker")
            || (event.is_none() && book_ticker_keys.iter().all(|&k| root.member(k).is_some()))
        {
            self.book_ticker(doc, &root, local)
        } else {
            Err(Reason::UnknownEvent)
        }
    }

    fn check_symbol(&self, doc: &Doc<'_>, f: &Fields) -> Parsed<()> {
        match doc.field(f, Key::Symbol) {
            Some(s) if !doc.str_eq(s, self.symbol) => Err(Reason::SymbolMismatch),
            _ => Ok(()),
        }
    }

    fn diff(
        &mut self,
        doc: &Doc<'_>,
        f: &Fields,
        local: i64,
        levels: &mut Levels,
    ) -> Parsed<Message> {
        self.check_symbol(doc, f)?;
        let first = int_field(doc, f, Key::FirstId)?;
        let last = int_field(doc, f, Key::LastId)?;
        if first > last {
            return Err(Reason::BadMessage);
        }
        // Spot has no `pu`: its continuity rule is U == previous u + 1, i.e. prev = U - 1.
        let prev = if self.usdm {
            int_field(doc, f, Key::PrevId)?
        } else {
            first - 1
        };
        let src = source_ts(doc, f, local)?;
        let (bids, asks) = (doc.field(f, Key::Bid), doc.field(f, Key::Ask));
        self.levels(doc, bids, asks, levels)?;
        Ok(Message::Diff(DiffHead {
            first,
            last,
            prev,
            src,
        }))
    }

    fn snapshot(
        &mut self,
        doc: &Doc<'_>,
        f: &Fields,
        local: i64,
        levels: &mut Levels,
    ) -> Parsed<Message> {
        let last_update_id = int_field(doc, f, Key::LastUpdateId)?;
        let src = source_ts(doc, f, local)?; // the spot REST snapshot has neither T nor E
        let (bids, asks) = (doc.field(f, Key::Bids), doc.field(f, Key::Asks));
        self.levels(doc, bids, asks, levels)?;
        Ok(Message::Snapshot {
            last_update_id,
            src,
        })
    }

    fn trade(&mut self, doc: &Doc<'_>, f: &Fields, local: i64) -> Parsed<Message> {
        self.check_symbol(doc, f)?;
        let trade_id = int_field(doc, f, Key::TradeId)?;
        let buyer_maker = match doc.field(f, Key::BuyerMaker).map(|m| doc.nodes[m]) {
            Some(Node::Bool(m)) => m,
            _ => return Err(Reason::BadMessage),
        };
        let px = self.value(doc, doc.field(f, Key::Price), Field::Price)?;
        let qty = self.value(doc, doc.field(f, Key::Qty), Field::Size)?;
        let src = source_ts(doc, f, local)?;
        Ok(Message::Trade {
            trade_id,
            buyer_maker,
            px,
            qty,
            src,
        })
    }

    fn book_ticker(&mut self, doc: &Doc<'_>, f: &Fields, local: i64) -> Parsed<Message> {
        self.check_symbol(doc, f)?;
        let update_id = int_field(doc, f, Key::LastId)?;
        let src = source_ts(doc, f, local)?; // spot's carries no time: the local time
        Ok(Message::BookTicker(BookTicker {
            update_id,
            bid_px: self.value(doc, doc.field(f, Key::Bid), Field::Price)?,
            bid_qty: self.value(doc, doc.field(f, Key::BidQty), Field::Size)?,
            ask_px: self.value(doc, doc.field(f, Key::Ask), Field::Price)?,
            ask_qty: self.value(doc, doc.field(f, Key::AskQty), Field::Size)?,
            src,
        }))
    }

    /// `[[px, qty, ...], ...]` bids then asks. The reference checks every level's shape, then
    /// converts all prices, then all sizes; an unhashable price (a list or an object) fails the
    /// price pass before any conversion.
    fn levels(
        &mut self,
        doc: &Doc<'_>,
        bids: Option<usize>,
        asks: Option<usize>,
        out: &mut Levels,
    ) -> Parsed<()> {
        let (Some(bids), Some(asks)) = (bids, asks) else {
            return Err(Reason::BadMessage);
        };
        let (Node::Array { len: n_bids, .. }, Node::Array { .. }) =
            (doc.nodes[bids], doc.nodes[asks])
        else {
            return Err(Reason::BadMessage);
        };
        out.px.clear();
        out.qty.clear();
        out.n_bids = n_bids;
        // Level shapes: a list of at least two items.
        let mut pairs = std::mem::take(&mut out.pairs);
        pairs.clear();
        let result = self.level_values(doc, bids, asks, &mut pairs, out);
        out.pairs = pairs;
        result
    }

    fn level_values(
        &mut self,
        doc: &Doc<'_>,
        bids: usize,
        asks: usize,
        pairs: &mut Vec<(usize, usize)>,
        out: &mut Levels,
    ) -> Parsed<()> {
        for level in doc.items(bids).chain(doc.items(asks)) {
            match doc.nodes[level] {
                Node::Array { len, .. } if len >= 2 => {
                    let px = level + 1;
                    pairs.push((px, doc.skip(px)));
                }
                _ => return Err(Reason::BadMessage),
            }
        }
        for pass in [Field::Price, Field::Size] {
            let pick = |&(px, qty): &(usize, usize)| if pass == Field::Price { px } else { qty };
            if pairs.iter().map(pick).any(|v| unhashable(doc, v)) {
                return Err(Reason::BadMessage);
            }
            let column = if pass == Field::Price {
                &mut out.px
            } else {
                &mut out.qty
            };
            for v in pairs.iter().map(pick) {
                column.push(self.value_of(doc, v, pass)?);
            }
        }
        Ok(())
    }

    /// A price or size field; anything but a decimal string is `bad_message`.
    fn value(&mut self, doc: &Doc<'_>, node: Option<usize>, field: Field) -> Parsed<i64> {
        match node {
            Some(v) => self.value_of(doc, v, field),
            None => Err(Reason::BadMessage),
        }
    }

    fn value_of(&mut self, doc: &Doc<'_>, v: usize, field: Field) -> Parsed<i64> {
        let (grid, positive) = match field {
            Field::Price => (self.px, true),
            Field::Size => (self.qty, false),
        };
        let text = match doc.nodes[v] {
            Node::Str {
                start,
                end,
                escaped: false,
            } => &doc.text[start..end],
            Node::Str { .. } => return self.resolve(doc, v, field),
            _ => return Err(Reason::BadMessage),
        };
        match steps(text.as_bytes(), grid, positive) {
            Plain::Steps(s) => Ok(s),
            Plain::Refused(reason) => Err(reason),
            Plain::NotPlain => self.resolver.steps(field, text),
        }
    }

    fn resolve(&mut self, doc: &Doc<'_>, v: usize, field: Field) -> Parsed<i64> {
        let text = doc.str_at(v).ok_or(Reason::BadMessage)?;
        let (grid, positive) = match field {
            Field::Price => (self.px, true),
            Field::Size => (self.qty, false),
        };
        match steps(text.as_bytes(), grid, positive) {
            Plain::Steps(s) => Ok(s),
            Plain::Refused(reason) => Err(reason),
            Plain::NotPlain => self.resolver.steps(field, &text),
        }
    }
}

fn unhashable(doc: &Doc<'_>, v: usize) -> bool {
    matches!(doc.nodes[v], Node::Array { .. } | Node::Object { .. })
}

/// A non-negative int64 field (ids, sequence numbers); missing, null or ill-typed is
/// `bad_message`.
fn int_field(doc: &Doc<'_>, f: &Fields, key: Key) -> Parsed<i64> {
    match doc.field(f, key).map(|v| doc.nodes[v]) {
        Some(Node::Int(v)) if (0..=I64_MAX).contains(&v) => Ok(v as i64),
        _ => Err(Reason::BadMessage),
    }
}

/// `T` if present else `E` (ms -> ns), else the local time.
fn source_ts(doc: &Doc<'_>, f: &Fields, local: i64) -> Parsed<i64> {
    let t = doc
        .field(f, Key::TxnTime)
        .or_else(|| doc.field(f, Key::EventTime));
    let Some(t) = t else {
        return Ok(local);
    };
    match doc.nodes[t] {
        Node::Int(v) if (0..=MS_MAX).contains(&v) => Ok(v as i64 * 1_000_000),
        _ => Err(Reason::BadMessage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        assert_eq!(classify("btcusdt@depth@0ms", "BTCUSDT"), StreamKind::Diff);
        assert_eq!(classify("btcusdt@depth", "BTCUSDT"), StreamKind::Diff);
        assert_eq!(classify("BtcUsdt@trade", "BTCUSDT"), StreamKind::Trade);
        assert_eq!(
            classify("btcusdt@bookTicker", "BTCUSDT"),
            StreamKind::BookTicker
        );
        assert_eq!(classify("btcusdt@depth20", "BTCUSDT"), StreamKind::Unknown);
        assert_eq!(classify("btcusdt@booktick", "BTCUSDT"), StreamKind::Unknown);
        assert_eq!(classify("btcusdt", "BTCUSDT"), StreamKind::Unknown);
        assert_eq!(
            classify("ethusdt@trade", "BTCUSDT"),
            StreamKind::OtherSymbol
        );
        // Python's upper(): the long s folds to S.
        assert_eq!(
            classify("btcu\u{17f}dt@trade", "BTCUSDT"),
            StreamKind::Trade
        );
        assert_eq!(
            classify("btcusdt@trade", "btcusdt"),
            StreamKind::OtherSymbol
        );
    }
}
