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
    pub(crate) fn uint(&mut self) -> Result<u64, Bail> {
        self.peek();
        let start = self.at;
        let mut at = start;
        let mut n: u64 = 0;
        while let Some(&b) = self.bytes.get(at) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // Exact for up to nineteen digits; longer numbers are checked below.
            n = n.wrapping_mul(10).wrapping_add(u64::from(d));
            at += 1;
        }
        let digits = &self.bytes[start..at];
        if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
            return Err(Bail);
        }
        if matches!(self.bytes.get(at), Some(b'.' | b'e' | b'E')) {
            return Err(Bail);
        }
        if digits.len() > 19 {
            n = digits
                .iter()
                .try_fold(0u64, |n, d| {
                    n.checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(d - b'0')))
                })
                .ok_or(Bail)?;
        }
        self.at = at;
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

    /// Nothing but white space left.
    pub(crate) fn end(&mut self) -> Result<(), Bail> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(Bail),
        }
    }
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
                let mut entries = Vec::new();
                c.eat(b'{')?;
                if !c.eat_if(b'}') {
                    loop {
                        let tensor = c.string()?;
                        c.eat(b':')?;
                        entries.push((tensor, c.string()?));
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
    fn an_index_is_scanned_or_left_to_serde() {
        let scan = index(
            br#"{"metadata": {"total_size": 24, "format": "pt", "x": null},
                 "weight_map": {"a": "s1", "b": "s2", "a": "s3"}}  "#,
        )
        .unwrap();
        assert_eq!(scan.weight_map, [("a", "s1"), ("b", "s2"), ("a", "s3")]);
        assert_eq!(scan.total_size, Some(24));
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
