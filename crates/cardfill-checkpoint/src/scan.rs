//! A strict scanner for the plain JSON that writers emit: safetensors headers and index files.
//!
//! It takes only what it is sure of (strings without escapes or control characters, unsigned
//! integers without sign, fraction or exponent, each known field once) and gives up
//! ([`Bail`]) on anything else. Its caller then parses the same bytes with serde_json, which
//! decides every error and every unusual input: what the scanner accepts, serde_json accepts
//! with the same result, so the two paths cannot disagree.

/// The scanner met something it does not take: parse with serde_json instead.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Bail;

/// A position in JSON text.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`, which must be UTF-8 (serde_json refuses the rest
    /// anyway, inside a string or outside).
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self, Bail> {
        let text = std::str::from_utf8(bytes).map_err(|_| Bail)?;
        Ok(Cursor { text, bytes, at: 0 })
    }

    /// The next byte after white space, not consumed.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.at) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    /// The next byte after white space, consumed.
    pub(crate) fn next(&mut self) -> Result<u8, Bail> {
        let b = self.peek().ok_or(Bail)?;
        self.at += 1;
        Ok(b)
    }

    /// Consumes `want` (after white space).
    pub(crate) fn eat(&mut self, want: u8) -> Result<(), Bail> {
        if self.next()? == want {
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// Consumes `c` when it comes next; whether it did.
    pub(crate) fn eat_if(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.at += 1;
        }
        hit
    }

    /// Consumes the literal `null`.
    pub(crate) fn null(&mut self) -> Result<(), Bail> {
        self.peek();
        if self.bytes[self.at..].starts_with(b"null") {
            self.at += 4;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// A string with no escapes and no control characters.
    pub(crate) fn string(&mut self) -> Result<&'a str, Bail> {
        self.eat(b'"')?;
        let start = self.at;
        let end = start + special_at(&self.bytes[start..]).ok_or(Bail)?;
        if self.bytes[end] != b'"' {
            return Err(Bail);
        }
        self.at = end + 1;
        // Both ends are next to an ASCII quote: character boundaries.
        self.text.get(start..end).ok_or(Bail)
    }

    /// An unsigned integer as serde_json reads one into a `u64`: `0` or digits without a
    /// leading zero, not followed by a fraction or exponent, at most `u64::MAX`.
    // Inlined: the scanners' hottest call, with a short common path.
    #[inline(always)]
    pub(crate) fn uint(&mut self) -> Result<u64, Bail> {
        self.peek();
        let rest = &self.bytes[self.at..];
        let (len, n) = match short_uint(rest) {
            Some(short) => short,
            None => long_uint(rest)?,
        };
        self.at += len;
        Ok(n)
    }

    /// Consumes `"key"` when it comes next (after white space); whether it did. The key must
    /// hold no `"`, `\\` or control character.
    pub(crate) fn key_is(&mut self, quoted: &[u8]) -> bool {
        self.peek();
        let hit = self.bytes[self.at..].starts_with(quoted);
        if hit {
            self.at += quoted.len();
        }
        hit
    }

    /// A string of at most `max` bytes starting right here (no white space skipped), read
    /// byte by byte: cheaper than [`Cursor::string`] for short strings. `None`, consuming
    /// nothing, where [`Cursor::string`] would give up or the string is longer.
    pub(crate) fn short_string(&mut self, max: usize) -> Option<&'a str> {
        let rest = self.bytes.get(self.at..)?.strip_prefix(b"\"")?;
        for (len, &b) in rest.iter().enumerate().take(max + 1) {
            if b == b'"' {
                // Both ends are next to an ASCII quote: character boundaries.
                let s = self.text.get(self.at + 1..self.at + 1 + len)?;
                self.at += len + 2;
                return Some(s);
            }
            if b == b'\\' || b < 0x20 {
                return None;
            }
        }
        None
    }

    /// Consumes the string `"s"` when it comes next (after white space); whether it did. `s`
    /// must be a string [`Cursor::string`] returned: no `"`, `\\` or control character.
    pub(crate) fn quoted_is(&mut self, s: &str) -> bool {
        self.peek();
        let at = self.at;
        let hit = self.bytes.get(at) == Some(&b'"')
            && self
                .bytes
                .get(at + 1..)
                .is_some_and(|rest| rest.starts_with(s.as_bytes()))
            && self.bytes.get(at + 1 + s.len()) == Some(&b'"');
        if hit {
            self.at = at + s.len() + 2;
        }
        hit
    }

    /// Consumes `bytes` when they come next as they are (no white space skipped); whether it
    /// did.
    pub(crate) fn eat_exact(&mut self, bytes: &[u8]) -> bool {
        let hit = self
            .bytes
            .get(self.at..)
            .is_some_and(|rest| rest.starts_with(bytes));
        if hit {
            self.at += bytes.len();
        }
        hit
    }

    /// The position reached, to come back to with [`Cursor::rewind`].
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    /// Goes back to a position reached before.
    pub(crate) fn rewind(&mut self, at: usize) {
        self.at = at;
    }

    /// Nothing but white space left.
    pub(crate) fn end(&mut self) -> Result<(), Bail> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(Bail),
        }
    }
}

/// Powers of ten up to 10^8.
const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// Each byte of a word set to `b`.
const fn splat(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

/// The eight bytes of `bytes` from `at`, as a little-endian word, where there are eight.
fn word(bytes: &[u8], at: usize) -> Option<u64> {
    let eight = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(eight.try_into().ok()?))
}

/// How many ASCII digits `w` (eight bytes, the first in the low byte) starts with.
fn leading_digits(w: u64) -> usize {
    // Up to the first non-digit no byte carries or borrows into the next, so its high bit
    // is set exactly when it is below `0`, above `9` (+0x46 reaches 0x80), or not ASCII.
    let not_digit = (w.wrapping_sub(splat(b'0')) | w.wrapping_add(splat(0x46)) | w) & splat(0x80);
    (not_digit.trailing_zeros() / 8) as usize
}

/// The 1 to 15 ASCII digits `bytes` starts with and their value, read a word at a time,
/// where [`Cursor::uint`] takes them; `None` for anything else (a leading zero, a fraction or
/// exponent, a longer run, too few bytes left for a word): [`long_uint`] decides those.
// Inlined into `uint`, which is inlined into the scanners.
#[inline(always)]
fn short_uint(bytes: &[u8]) -> Option<(usize, u64)> {
    let w = word(bytes, 0)?;
    // (digits, value, the byte after them)
    let (len, value, after) = match leading_digits(w) {
        0 => return None,
        8 => {
            let next = word(bytes, 8)?;
            match leading_digits(next) {
                8 => return None,
                0 => (8, eight_digits(w, 8), next as u8),
                k => (
                    8 + k,
                    eight_digits(w, 8) * POW10[k] + eight_digits(next, k),
                    (next >> (8 * k)) as u8,
                ),
            }
        }
        k => (k, eight_digits(w, k), (w >> (8 * k)) as u8),
    };
    if (len > 1 && w as u8 == b'0') || matches!(after, b'.' | b'e' | b'E') {
        return None;
    }
    Some((len, value))
}

/// [`Cursor::uint`] byte by byte: the digits `bytes` starts with and their value.
#[cold]
fn long_uint(bytes: &[u8]) -> Result<(usize, u64), Bail> {
    let len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let digits = &bytes[..len];
    if digits.is_empty() || (len > 1 && digits[0] == b'0') {
        return Err(Bail);
    }
    if matches!(bytes.get(len), Some(b'.' | b'e' | b'E')) {
        return Err(Bail);
    }
    let n = if len > 19 {
        digits
            .iter()
            .try_fold(0u64, |n, d| {
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d - b'0')))
            })
            .ok_or(Bail)?
    } else {
        // Exact: below 10^19.
        digits.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0'))
    };
    Ok((len, n))
}

/// The value of the first `k` (1 to 8) bytes of `w`, all ASCII digits, the first in the low
/// byte: the digits are moved to the top (zeros below are leading zeros), then pairs,
/// fours and eights of digits are combined by multiplication.
fn eight_digits(w: u64, k: usize) -> u64 {
    let v = w.wrapping_sub(splat(b'0')) << (8 * (8 - k));
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    const MASK: u64 = 0x0000_00ff_0000_00ff;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    ((v & MASK)
        .wrapping_mul(MUL1)
        .wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2)))
        >> 32
}

/// The position of the first `"`, `\\` or control character of `bytes`: sixteen bytes at a
/// time (SSE2, which every x86-64 has), then one by one.
#[cfg(target_arch = "x86_64")]
fn special_at(bytes: &[u8]) -> Option<usize> {
    // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 processor has it.
    unsafe { special_at_sse2(bytes) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn special_at_sse2(bytes: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x,
        _mm_set1_epi8,
    };
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let control = _mm_set1_epi8(0x1f);
    let mut chunks = bytes.chunks_exact(16);
    let mut at = 0;
    for chunk in &mut chunks {
        let (lo, hi) = chunk.split_at(8);
        let word = |half: &[u8]| {
            let mut w = [0; 8];
            w.copy_from_slice(half);
            i64::from_le_bytes(w)
        };
        let v = _mm_set_epi64x(word(hi), word(lo));
        // A byte at most 0x1f (unsigned) is its own minimum with 0x1f.
        let hits = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
            _mm_cmpeq_epi8(_mm_min_epu8(v, control), v),
        );
        let mask = _mm_movemask_epi8(hits);
        if mask != 0 {
            return Some(at + mask.trailing_zeros() as usize);
        }
        at += 16;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

/// The position of the first `"`, `\\` or control character of `bytes`: eight bytes at a
/// time, then one by one.
#[cfg(not(target_arch = "x86_64"))]
fn special_at(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // High bit of each byte below `n` (exact up to the first such byte, which is all that is
    // looked at): the classic "has less than" word trick.
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let hits = below(w ^ (ONES * u64::from(b'"')), 1)
            | below(w ^ (ONES * u64::from(b'\\')), 1)
            | below(w, 0x20);
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

/// What the scanner took of an index file: `weight_map` in file order, and
/// `metadata.total_size` when it is an integer.
pub(crate) struct IndexScan<'a> {
    pub(crate) weight_map: Vec<(&'a str, &'a str)>,
    pub(crate) total_size: Option<u64>,
}

/// Scans `{"metadata": {...}, "weight_map": {"tensor": "shard", ...}}` (either order, each
/// key once, no other key). `metadata` may be `null` or an object whose values are strings,
/// integers or `null`.
pub(crate) fn index(text: &[u8]) -> Result<IndexScan<'_>, Bail> {
    let mut c = Cursor::new(text)?;
    let mut weight_map = None;
    let mut metadata = false;
    let mut total_size = None;
    c.eat(b'{')?;
    loop {
        match c.string()? {
            "weight_map" if weight_map.is_none() => {
                c.eat(b':')?;
                // Sized once from the text (an entry is rarely under 64 bytes): growing by
                // doubling would touch twice the memory, a page fault per 4 KiB.
                let mut entries: Vec<(&str, &str)> = Vec::with_capacity(text.len() / 64);
                c.eat(b'{')?;
                if !c.eat_if(b'}') {
                    loop {
                        let tensor = c.string()?;
                        c.eat(b':')?;
                        // Neighbours mostly share a shard: the previous one is tried first,
                        // and then returned itself (callers compare shards by address first).
                        let shard = match entries.last() {
                            Some(&(_, previous)) if c.quoted_is(previous) => previous,
                            _ => c.string()?,
                        };
                        entries.push((tensor, shard));
                        match c.next()? {
                            b',' => {}
                            b'}' => break,
                            _ => return Err(Bail),
                        }
                    }
                }
                weight_map = Some(entries);
            }
            "metadata" if !metadata => {
                metadata = true;
                c.eat(b':')?;
                if c.peek() == Some(b'n') {
                    c.null()?;
                } else {
                    total_size = index_metadata(&mut c)?;
                }
            }
            _ => return Err(Bail),
        }
        match c.next()? {
            b',' => {}
            b'}' => break,
            _ => return Err(Bail),
        }
    }
    c.end()?;
    Ok(IndexScan {
        weight_map: weight_map.ok_or(Bail)?,
        total_size,
    })
}

/// The index's `metadata` object: its `total_size` when an integer.
fn index_metadata(c: &mut Cursor<'_>) -> Result<Option<u64>, Bail> {
    let mut total_size = None;
    let mut seen = false;
    c.eat(b'{')?;
    if c.eat_if(b'}') {
        return Ok(None);
    }
    loop {
        let key = c.string()?;
        c.eat(b':')?;
        let value = match c.peek() {
            Some(b'"') => c.string().map(|_| None)?,
            Some(b'n') => c.null().map(|()| None)?,
            _ => Some(c.uint()?),
        };
        if key == "total_size" {
            if seen {
                return Err(Bail);
            }
            seen = true;
            total_size = value;
        }
        match c.next()? {
            b',' => {}
            b'}' => return Ok(total_size),
            _ => return Err(Bail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uint(s: &str) -> Result<u64, Bail> {
        let mut c = Cursor::new(s.as_bytes())?;
        let n = c.uint()?;
        c.eat(b']')?;
        Ok(n)
    }

    #[test]
    fn integers_are_taken_only_as_serde_json_reads_a_u64() {
        assert_eq!(uint("0]"), Ok(0));
        assert_eq!(uint(" 42 ]"), Ok(42));
        assert_eq!(uint("18446744073709551615]"), Ok(u64::MAX));
        for bad in [
            "18446744073709551616]",
            "01]",
            "-1]",
            "1.0]",
            "1e3]",
            "0e1]",
            "+1]",
            "]",
            "99999999999999999999]",
        ] {
            assert_eq!(uint(bad), Err(Bail), "{bad}");
        }
    }

    #[test]
    fn integers_of_every_length_read_as_str_parse_reads_them() {
        // Every length, each followed by every kind of byte, near the end of the text and not.
        let after: [&[u8]; 8] = [b"", b"]", b",1", b" ", b"x", b"/", b":", b"\xc3\xa9"];
        for len in 1..=22 {
            for lead in [b'1', b'9'] {
                let mut digits = vec![lead];
                digits.extend((1..len).map(|i| b"0123456789"[(i * 7 + len) % 10]));
                let text = std::str::from_utf8(&digits).unwrap();
                let want = text.parse::<u64>().ok();
                for tail in after {
                    for pad in [&b""[..], b"        ]"] {
                        let mut bytes = digits.clone();
                        bytes.extend_from_slice(tail);
                        bytes.extend_from_slice(pad);
                        let mut c = Cursor::new(&bytes).unwrap();
                        assert_eq!(c.uint().ok(), want, "{text} then {tail:?}");
                        if want.is_some() {
                            assert_eq!(c.at, len, "{text}");
                        }
                    }
                }
            }
        }
        assert_eq!(uint("12345678]"), Ok(12_345_678));
        assert_eq!(uint("1234567812345678]"), Ok(1_234_567_812_345_678));
    }

    #[test]
    fn strings_with_escapes_or_control_characters_are_left_to_serde() {
        let string = |s: &[u8]| Cursor::new(s)?.string().map(str::to_owned);
        assert_eq!(string(br#" "a.b" "#), Ok("a.b".to_owned()));
        assert_eq!(string("\"é\"".as_bytes()), Ok("é".to_owned()));
        assert_eq!(string(br#""a\"b""#), Err(Bail));
        assert_eq!(string(b"\"a\tb\""), Err(Bail));
        assert_eq!(string(b"\"\xff\""), Err(Bail));
        assert_eq!(string(b"\"open"), Err(Bail));
        // Found at every position of a word and of the remainder.
        for len in 0..40 {
            for special in [b'"', b'\\', b'\n', 0] {
                let mut bytes = vec![b'a'; len];
                bytes.push(special);
                bytes.extend_from_slice(b"\"\\");
                assert_eq!(special_at(&bytes), Some(len), "{len} {special}");
            }
            assert_eq!(special_at(&vec![0xe9; len]), None);
        }
    }

    #[test]
    fn short_strings_are_read_as_strings_are() {
        for text in [
            &br#""BF16","#[..],
            br#""""#,
            br#""F8_E4M3FNUZ"]"#,
            br#""0123456789abcdef""#,
            br#""0123456789abcdefg""#,
            br#""a\u0062""#,
            b"\"a\tb\"",
            br#" "a""#,
            br#""open"#,
            "\"é\"".as_bytes(),
        ] {
            let mut short = Cursor::new(text).unwrap();
            let mut long = Cursor::new(text).unwrap();
            match short.short_string(16) {
                Some(s) => {
                    assert_eq!(Ok(s), long.string(), "{text:?}");
                    assert_eq!(short.at, long.at);
                }
                None => assert_eq!(short.at, 0, "nothing consumed"),
            }
        }
        let mut c = Cursor::new(br#""0123456789abcdefg""#).unwrap();
        assert_eq!(c.short_string(16), None, "longer than asked");
        let mut c = Cursor::new(br#""a\u0062""#).unwrap();
        assert_eq!(c.short_string(16), None, "an escape");
    }

    #[test]
    fn an_index_is_scanned_or_left_to_serde() {
        let scan = index(
            br#"{"metadata": {"total_size": 24, "format": "pt", "x": null},
                 "weight_map": {"a": "s1", "b": "s2", "a": "s3"}}  "#,
        )
        .unwrap();
        assert_eq!(scan.weight_map, [("a", "s1"), ("b", "s2"), ("a", "s3")]);
        assert_eq!(scan.total_size, Some(24));
        // A shard like the previous one but longer, or spelled with an escape, is not it.
        let scan = index(br#"{"weight_map": {"a": "s1", "b": "s1", "c": "s12", "d": "s1"}}"#);
        let shards: Vec<&str> = scan.unwrap().weight_map.iter().map(|e| e.1).collect();
        assert_eq!(shards, ["s1", "s1", "s12", "s1"]);
        assert!(index(br#"{"weight_map": {"a": "s1", "b": "s\u0031"}}"#).is_err());
        let scan = index(br#"{"weight_map": {}, "metadata": null}"#).unwrap();
        assert!(scan.weight_map.is_empty());
        assert_eq!(scan.total_size, None);
        for bad in [
            &br#"{"metadata": {}}"#[..],
            br#"{"weight_map": {}, "weight_map": {}}"#,
            br#"{"weight_map": {}, "other": 1}"#,
            br#"{"weight_map": {"a": "s",}}"#,
            br#"{"weight_map": {"a": 1}}"#,
            br#"{"weight_map": {}} x"#,
            br#"{"metadata": {"total_size": 1.5}, "weight_map": {}}"#,
            br#"{"metadata": {"total_size": 1, "total_size": 2}, "weight_map": {}}"#,
            br#"{"metadata": {"nested": {}}, "weight_map": {}}"#,
            br#"["x"]"#,
        ] {
            assert!(index(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
