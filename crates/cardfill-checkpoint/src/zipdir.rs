//! The central directory of a zip file (with zip64), read without touching member data: enough
//! to find `<prefix>/data.pkl` in a `torch.save` archive and the sizes of its storages.
//!
//! Hand-written rather than a zip crate because only the directory is wanted, every count is
//! bounded here (entries, directory size, member size), and compressed members are inflated
//! only up to a small bound.

use std::io::{Read, Seek, SeekFrom};

/// Bounds on what one zip file may cost.
pub const MAX_ENTRIES: u64 = 1_000_000;
/// Largest central directory read into memory.
pub const MAX_DIRECTORY_BYTES: u64 = 256 << 20;

/// One member of the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Name as stored (`archive/data.pkl`).
    pub name: String,
    /// Compression method (0 = stored, 8 = deflate).
    pub method: u16,
    /// Bytes in the file.
    pub compressed_size: u64,
    /// Bytes once inflated.
    pub size: u64,
    /// Offset of the member's local header.
    pub header_offset: u64,
}

/// What is wrong with a zip file: a message and the byte offset where it makes sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipError {
    /// Byte offset in the file, if one applies.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ZipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(f, "zip offset {o}: {}", self.message),
            None => write!(f, "zip: {}", self.message),
        }
    }
}

fn err<T>(offset: impl Into<Option<u64>>, message: impl Into<String>) -> Result<T, ZipError> {
    Err(ZipError {
        offset: offset.into(),
        message: message.into(),
    })
}

fn io<T>(offset: u64, e: std::io::Error) -> Result<T, ZipError> {
    err(offset, format!("read failed: {e}"))
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn read_at<F: Read + Seek>(file: &mut F, offset: u64, len: usize) -> Result<Vec<u8>, ZipError> {
    let mut buf = vec![0u8; len];
    if let Err(e) = file.seek(SeekFrom::Start(offset)) {
        return io(offset, e);
    }
    if let Err(e) = file.read_exact(&mut buf) {
        return io(offset, e);
    }
    Ok(buf)
}

/// Reads the central directory of `file` (`len` bytes long).
pub fn entries<F: Read + Seek>(file: &mut F, len: u64) -> Result<Vec<Entry>, ZipError> {
    const EOCD: u32 = 0x0605_4b50;
    let tail_len = len.min(22 + 65_535) as usize;
    let tail_start = len - tail_len as u64;
    let tail = read_at(file, tail_start, tail_len)?;
    let Some(at) = (0..tail_len.saturating_sub(21))
        .rev()
        .find(|&i| le32(&tail, i) == EOCD)
    else {
        return err(None, "no end-of-central-directory record");
    };
    let eocd_offset = tail_start + at as u64;
    let e = &tail[at..];
    let mut count = u64::from(le16(e, 10));
    let mut dir_size = u64::from(le32(e, 12));
    let mut dir_offset = u64::from(le32(e, 16));
    if count == 0xffff || dir_size == 0xffff_ffff || dir_offset == 0xffff_ffff {
        // zip64: the locator sits just before the end record.
        if eocd_offset < 20 {
            return err(eocd_offset, "zip64 locator missing");
        }
        let loc = read_at(file, eocd_offset - 20, 20)?;
        if le32(&loc, 0) != 0x0706_4b50 {
            return err(eocd_offset - 20, "zip64 locator missing");
        }
        let z_off = le64(&loc, 8);
        if z_off.checked_add(56).is_none_or(|end| end > len) {
            return err(eocd_offset - 20, "zip64 end record points past the file");
        }
        let z = read_at(file, z_off, 56)?;
        if le32(&z, 0) != 0x0606_4b50 {
            return err(z_off, "bad zip64 end record signature");
        }
        count = le64(&z, 32);
        dir_size = le64(&z, 40);
        dir_offset = le64(&z, 48);
    }
    if count > MAX_ENTRIES {
        return err(
            eocd_offset,
            format!("{count} entries (limit {MAX_ENTRIES})"),
        );
    }
    if dir_size > MAX_DIRECTORY_BYTES {
        return err(
            eocd_offset,
            format!("central directory of {dir_size} bytes (limit {MAX_DIRECTORY_BYTES})"),
        );
    }
    if dir_offset.checked_add(dir_size).is_none_or(|end| end > len) {
        return err(
            eocd_offset,
            format!("central directory at {dir_offset} (+{dir_size}) runs past the file"),
        );
    }
    let dir = read_at(file, dir_offset, dir_size as usize)?;
    let mut out = Vec::with_capacity(count.min(4096) as usize);
    let mut p = 0usize;
    for _ in 0..count {
        let here = dir_offset + p as u64;
        if p + 46 > dir.len() || le32(&dir, p) != 0x0201_4b50 {
            return err(here, "bad central directory entry");
        }
        let method = le16(&dir, p + 10);
        let mut compressed_size = u64::from(le32(&dir, p + 20));
        let mut size = u64::from(le32(&dir, p + 24));
        let name_len = usize::from(le16(&dir, p + 28));
        let extra_len = usize::from(le16(&dir, p + 30));
        let comment_len = usize::from(le16(&dir, p + 32));
        let mut header_offset = u64::from(le32(&dir, p + 42));
        let name_at = p + 46;
        let extra_at = name_at + name_len;
        let next = extra_at + extra_len + comment_len;
        if next > dir.len() {
            return err(here, "central directory entry runs past the directory");
        }
        let name = String::from_utf8_lossy(&dir[name_at..extra_at]).into_owned();
        // zip64 extra field: the 0xffffffff fields, in order size, compressed, offset.
        let mut x = extra_at;
        while x + 4 <= extra_at + extra_len {
            let id = le16(&dir, x);
            let n = usize::from(le16(&dir, x + 2));
            let body = x + 4;
            if body + n > extra_at + extra_len {
                break;
            }
            if id == 1 {
                let mut f = body;
                for field in [&mut size, &mut compressed_size, &mut header_offset] {
                    if *field == 0xffff_ffff {
                        if f + 8 > body + n {
                            return err(here, "zip64 extra field too short");
                        }
                        *field = le64(&dir, f);
                        f += 8;
                    }
                }
            }
            x = body + n;
        }
        out.push(Entry {
            name,
            method,
            compressed_size,
            size,
            header_offset,
        });
        p = next;
    }
    Ok(out)
}

/// The byte offset where `entry`'s data starts, from its local header.
pub fn data_offset<F: Read + Seek>(file: &mut F, len: u64, entry: &Entry) -> Result<u64, ZipError> {
    let at = entry.header_offset;
    if at.checked_add(30).is_none_or(|end| end > len) {
        return err(
            at,
            format!(
                "local header of `{}` past the file",
                entry.name.escape_debug()
            ),
        );
    }
    let h = read_at(file, at, 30)?;
    if le32(&h, 0) != 0x0403_4b50 {
        return err(
            at,
            format!(
                "bad local header signature for `{}`",
                entry.name.escape_debug()
            ),
        );
    }
    let start = at + 30 + u64::from(le16(&h, 26)) + u64::from(le16(&h, 28));
    if start
        .checked_add(entry.compressed_size)
        .is_none_or(|end| end > len)
    {
        return err(
            at,
            format!(
                "member `{}` ({} bytes) runs past the end of the file",
                entry.name.escape_debug(),
                entry.compressed_size
            ),
        );
    }
    Ok(start)
}

/// Reads `entry`'s bytes: stored members up to `max` bytes, deflated ones inflated up to `max`.
pub fn read<F: Read + Seek>(
    file: &mut F,
    len: u64,
    entry: &Entry,
    max: u64,
) -> Result<Vec<u8>, ZipError> {
    let start = data_offset(file, len, entry)?;
    if entry.compressed_size > max {
        return err(
            start,
            format!(
                "member `{}` is {} bytes (limit {max})",
                entry.name.escape_debug(),
                entry.compressed_size
            ),
        );
    }
    let raw = read_at(file, start, entry.compressed_size as usize)?;
    match entry.method {
        0 => Ok(raw),
        8 => miniz_oxide::inflate::decompress_to_vec_with_limit(&raw, max as usize).or_else(|e| {
            err(
                start,
                format!(
                    "member `{}` does not inflate within {max} bytes: {e}",
                    entry.name.escape_debug()
                ),
            )
        }),
        m => err(
            start,
            format!(
                "member `{}` uses compression method {m}",
                entry.name.escape_debug()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A one-member zip archive whose member is `data` deflated.
    fn deflated_zip(name: &str, data: &[u8]) -> Vec<u8> {
        let packed = miniz_oxide::deflate::compress_to_vec(data, 9);
        let mut z = Vec::new();
        z.extend(0x0403_4b50u32.to_le_bytes());
        z.extend([20, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend((packed.len() as u32).to_le_bytes());
        z.extend((data.len() as u32).to_le_bytes());
        z.extend((name.len() as u16).to_le_bytes());
        z.extend(0u16.to_le_bytes());
        z.extend(name.as_bytes());
        z.extend(&packed);
        let dir_at = z.len() as u32;
        z.extend(0x0201_4b50u32.to_le_bytes());
        z.extend([20, 0, 20, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend((packed.len() as u32).to_le_bytes());
        z.extend((data.len() as u32).to_le_bytes());
        z.extend((name.len() as u16).to_le_bytes());
        z.extend([0u8; 12]);
        z.extend(0u32.to_le_bytes());
        z.extend(name.as_bytes());
        let dir_len = z.len() as u32 - dir_at;
        z.extend(0x0605_4b50u32.to_le_bytes());
        z.extend([0, 0, 0, 0, 1, 0, 1, 0]);
        z.extend(dir_len.to_le_bytes());
        z.extend(dir_at.to_le_bytes());
        z.extend(0u16.to_le_bytes());
        z
    }

    #[test]
    fn deflated_members_inflate_only_within_the_bound() {
        let small = deflated_zip("archive/data.pkl", b"\x80\x02}.");
        let mut c = Cursor::new(&small);
        let e = entries(&mut c, small.len() as u64).unwrap();
        assert_eq!(e[0].method, 8);
        assert_eq!(
            read(&mut c, small.len() as u64, &e[0], 1024).unwrap(),
            b"\x80\x02}."
        );
        // A zip bomb: 64 MiB of zeros in about 64 KiB.
        let bomb = deflated_zip("archive/data.pkl", &vec![0u8; 64 << 20]);
        assert!(bomb.len() < 200_000);
        let mut c = Cursor::new(&bomb);
        let e = entries(&mut c, bomb.len() as u64).unwrap();
        let err = read(&mut c, bomb.len() as u64, &e[0], 1 << 20).unwrap_err();
        assert!(
            err.message
                .contains("does not inflate within 1048576 bytes"),
            "{err}"
        );
    }

    #[test]
    fn directory_pointing_past_the_file_is_an_error_with_offset() {
        let mut z = deflated_zip("a", b"x");
        let n = z.len();
        // Central directory offset beyond the end.
        z[n - 6..n - 2].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        let mut c = Cursor::new(&z);
        let err = entries(&mut c, z.len() as u64).unwrap_err();
        assert!(err.to_string().contains("runs past the file"), "{err}");
        assert!(err.offset.is_some());
    }
}
