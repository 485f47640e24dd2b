//! Bounded reads of evidence files: the one way every collector opens an input.
//!
//! A file is opened without blocking (a FIFO never hangs), must be a regular file (checked on
//! the open descriptor, so a swapped path cannot slip through), and must be no larger than the
//! cap for its kind; at most the cap is read even if the file grows meanwhile. The caps are the
//! table "Input limits" of the README. While one run of the collectors holds a [`ListedScope`],
//! the directory's listing answers for files it does not hold, and small files are read and
//! parsed once.

use std::cell::RefCell;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde_json::Value;

const MIB: u64 = 1 << 20;

/// `config.json`, `adapter_config.json`, `generation_config.json`, accelerate and DeepSpeed
/// configs, `train_results.json` and other small JSON or YAML files.
pub const CONFIG_CAP: u64 = 16 * MIB;
/// A model card (`README.md`) or a `--template`.
pub const CARD_CAP: u64 = 64 * MIB;
/// A weight index (`*.safetensors.index.json`, `pytorch_model.bin.index.json`, diffusers
/// `model_index.json`).
pub const INDEX_CAP: u64 = 64 * MIB;
/// `trainer_state.json` (streamed: `log_history` is walked, never held whole).
pub const TRAINER_STATE_CAP: u64 = 1024 * MIB;
/// A run record in `.cardfill/` (streamed).
pub const RECORD_CAP: u64 = 512 * MIB;
/// A pickle: `data.pkl` inside a PyTorch zip, or a legacy pickle's header part.
pub const PICKLE_CAP: u64 = 256 * MIB;
/// A git-lfs pointer, W&B metadata and other files read only when tiny.
pub const SMALL_CAP: u64 = MIB;

/// Why an input was not read. The message names the file.
#[derive(Debug)]
pub struct ReadError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: ReadErrorKind,
}

/// What went wrong reading an input.
#[derive(Debug)]
pub enum ReadErrorKind {
    /// The file does not exist.
    NotFound,
    /// Not a regular file: a FIFO, a device, a socket or a directory.
    NotRegular(&'static str),
    /// Larger than its cap.
    TooLarge {
        /// The file's size in bytes.
        size: u64,
        /// The cap in bytes.
        cap: u64,
    },
    /// Any other I/O error (permission denied, …).
    Io(std::io::Error),
}

impl ReadError {
    /// Whether the file is simply absent.
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, ReadErrorKind::NotFound)
    }

    /// What went wrong, without the file's name.
    pub fn reason(&self) -> String {
        match &self.kind {
            ReadErrorKind::NotFound => "no such file or directory".to_owned(),
            ReadErrorKind::NotRegular(what) => format!("it is {what}, not a regular file"),
            ReadErrorKind::TooLarge { size, cap } => {
                format!("{size} bytes, over cardfill's limit of {cap} bytes for this kind of file")
            }
            ReadErrorKind::Io(e) => e.to_string(),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            ReadErrorKind::NotFound => write!(f, "`{p}` does not exist"),
            ReadErrorKind::NotRegular(what) => write!(
                f,
                "`{p}` is {what}, not a regular file: skipped (replace it with the real file)"
            ),
            ReadErrorKind::TooLarge { size, cap } => write!(
                f,
                "`{p}` is {size} bytes, over cardfill's limit of {cap} bytes for this kind of file: skipped"
            ),
            ReadErrorKind::Io(e) => write!(f, "cannot read `{p}`: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// The error without the file name (callers name the file themselves).
impl From<ReadError> for std::io::Error {
    fn from(e: ReadError) -> Self {
        match e.kind {
            ReadErrorKind::NotFound => Self::new(std::io::ErrorKind::NotFound, e.reason()),
            ReadErrorKind::Io(io) => io,
            // Not `InvalidData`, which is kept for text that is not UTF-8.
            ReadErrorKind::NotRegular(_) => Self::new(std::io::ErrorKind::InvalidInput, e.reason()),
            ReadErrorKind::TooLarge { .. } => {
                Self::new(std::io::ErrorKind::FileTooLarge, e.reason())
            }
        }
    }
}

/// The kind of a file that is not regular, in words.
pub fn describe(ft: std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Checks an already open file: regular, and no larger than `cap`. Returns its size.
pub fn check_open(file: &File, path: &Path, cap: u64) -> Result<u64, ReadError> {
    let err = |kind| ReadError {
        path: path.to_path_buf(),
        kind,
    };
    let meta = file.metadata().map_err(|e| err(ReadErrorKind::Io(e)))?;
    if !meta.file_type().is_file() {
        return Err(err(ReadErrorKind::NotRegular(describe(meta.file_type()))));
    }
    if meta.len() > cap {
        return Err(err(ReadErrorKind::TooLarge {
            size: meta.len(),
            cap,
        }));
    }
    Ok(meta.len())
}

/// Opens `path` for reading without blocking and checks it is a regular file of at most `cap`
/// bytes. Returns the file and its size. Use [`File::take`] with `cap` when reading on.
pub fn open(path: &Path, cap: u64) -> Result<(File, u64), ReadError> {
    if !may_exist(path) {
        return Err(ReadError {
            path: path.to_path_buf(),
            kind: ReadErrorKind::NotFound,
        });
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| ReadError {
            path: path.to_path_buf(),
            kind: if e.kind() == std::io::ErrorKind::NotFound {
                ReadErrorKind::NotFound
            } else {
                ReadErrorKind::Io(e)
            },
        })?;
    let size = check_open(&file, path, cap)?;
    Ok((file, size))
}

/// Reads an open, checked file whole: at most `cap` bytes; more is an error.
pub fn read_open(file: File, path: &Path, size: u64, cap: u64) -> Result<Vec<u8>, ReadError> {
    let mut data = Vec::with_capacity(usize::try_from(size.min(cap)).unwrap_or(0));
    file.take(cap.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| ReadError {
            path: path.to_path_buf(),
            kind: ReadErrorKind::Io(e),
        })?;
    if data.len() as u64 > cap {
        return Err(ReadError {
            path: path.to_path_buf(),
            kind: ReadErrorKind::TooLarge {
                size: data.len() as u64,
                cap,
            },
        });
    }
    Ok(data)
}

/// Reads `path` whole if it is a regular file of at most `cap` bytes.
///
/// Inside a [`ListedScope`], a file of the listed directory of at most 64 KiB is read from
/// storage once, however many collectors ask for it.
pub fn read(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    if let Some(kept) = kept(path, cap) {
        return Ok(kept);
    }
    let (file, size) = open(path, cap)?;
    let data = read_open(file, path, size, cap)?;
    keep(path, &data);
    Ok(data)
}

/// Why a JSON input gave no value.
#[derive(Debug)]
pub enum JsonError {
    /// The file could not be read (see [`read`]).
    Read(ReadError),
    /// The bytes are not JSON.
    Malformed(serde_json::Error),
}

/// `path` read as [`read`] does and parsed as JSON. Inside a [`ListedScope`], a small file of
/// the listed directory is parsed once: `config.json` has four readers.
pub fn json(path: &Path, cap: u64) -> Result<Rc<Value>, JsonError> {
    if let Some(value) = parsed(path, cap) {
        return Ok(value);
    }
    let bytes = read(path, cap).map_err(JsonError::Read)?;
    let value = Rc::new(serde_json::from_slice::<Value>(&bytes).map_err(JsonError::Malformed)?);
    if bytes.len() <= KEEP_MAX {
        LISTED.with(|l| {
            let mut listed = l.borrow_mut();
            if let Some(listed) = listed.as_mut()
                && let Some(name) = listed_name(listed, path)
            {
                let name = name.to_owned();
                listed
                    .parsed
                    .push((name, bytes.len() as u64, Rc::clone(&value)));
            }
        });
    }
    Ok(value)
}

/// The value of `path` already parsed in the current scope, if its size fits `cap`.
fn parsed(path: &Path, cap: u64) -> Option<Rc<Value>> {
    LISTED.with(|l| {
        let listed = l.borrow();
        let listed = listed.as_ref()?;
        let name = listed_name(listed, path)?;
        let (_, size, value) = listed.parsed.iter().find(|(n, _, _)| n == name)?;
        (*size <= cap).then(|| Rc::clone(value))
    })
}

/// The largest file a [`ListedScope`] keeps.
const KEEP_MAX: usize = 64 << 10;

/// The directory listed by the innermost [`ListedScope`] of this thread.
struct Listed {
    dir: PathBuf,
    /// A hash of every entry's name, sorted. Two names with one hash only cost a system call.
    names: Vec<u64>,
    /// Small files of `dir` already read whole: name and bytes.
    kept: Vec<(String, Vec<u8>)>,
    /// Files of `dir` already parsed as JSON: name, size in bytes and value.
    parsed: Vec<(String, u64, Rc<Value>)>,
}

thread_local! {
    static LISTED: RefCell<Option<Listed>> = const { RefCell::new(None) };
}

/// While alive, what one listing of a directory showed stands for it on this thread: a file of
/// that directory not among the names is absent without a system call ([`may_exist`], [`open`]),
/// and a small file read whole is read once ([`read`]). Collectors probe the same twenty-odd
/// names (`config.json`, `trainer_state.json`, `adapter_config.json`, …) and read
/// `config.json` several times; one run of the collectors holds one scope, so they see one
/// consistent directory. Dropping it ends the scope: later reads (the card a `fill` writes)
/// go to the file system again.
pub struct ListedScope {
    /// Not `Send`: the scope belongs to the thread that made it.
    _thread: std::marker::PhantomData<*const ()>,
}

impl ListedScope {
    /// Starts a scope for `dir`, whose entries are `names` (every entry: files, directories
    /// and others). Replaces an outer scope until dropped (scopes do not nest).
    pub fn new<'n>(dir: &Path, names: impl IntoIterator<Item = &'n str>) -> Self {
        let mut names: Vec<u64> = names.into_iter().map(name_hash).collect();
        names.sort_unstable();
        LISTED.with(|l| {
            *l.borrow_mut() = Some(Listed {
                dir: dir.to_path_buf(),
                names,
                kept: Vec::new(),
                parsed: Vec::new(),
            });
        });
        ListedScope {
            _thread: std::marker::PhantomData,
        }
    }
}

impl Drop for ListedScope {
    fn drop(&mut self) {
        LISTED.with(|l| l.borrow_mut().take());
    }
}

/// FNV-1a: names are short, and a collision only means asking the file system.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The name of `path` inside the listed directory, when `path` is that directory joined with
/// one name (as `dir.join(name)` spells it); `None` for any other spelling.
fn listed_name<'p>(listed: &Listed, path: &'p Path) -> Option<&'p str> {
    use std::os::unix::ffi::OsStrExt;
    let dir = listed.dir.as_os_str().as_bytes();
    let rest = path.as_os_str().as_bytes().strip_prefix(dir)?;
    let rest = if dir.ends_with(b"/") {
        rest
    } else {
        rest.strip_prefix(b"/")?
    };
    if rest.is_empty() || rest == b"." || rest == b".." || rest.contains(&b'/') {
        return None;
    }
    std::str::from_utf8(rest).ok()
}

/// False when `path` is known not to exist: it is directly in the directory of the current
/// [`ListedScope`] and its name was not listed. True otherwise (ask the file system).
pub fn may_exist(path: &Path) -> bool {
    LISTED.with(|l| {
        let listed = l.borrow();
        let Some(listed) = listed.as_ref() else {
            return true;
        };
        match listed_name(listed, path) {
            Some(name) => listed.names.binary_search(&name_hash(name)).is_ok(),
            None => true,
        }
    })
}

/// The bytes of `path` already read in the current scope, if they fit `cap`.
fn kept(path: &Path, cap: u64) -> Option<Vec<u8>> {
    LISTED.with(|l| {
        let listed = l.borrow();
        let listed = listed.as_ref()?;
        let name = listed_name(listed, path)?;
        let (_, data) = listed.kept.iter().find(|(n, _)| n == name)?;
        (data.len() as u64 <= cap).then(|| data.clone())
    })
}

/// Keeps `data`, the whole of `path`, for the rest of the scope when it is small.
fn keep(path: &Path, data: &[u8]) {
    // Configs are a few kB; a weight index read twice costs less than holding a copy.
    if data.len() > KEEP_MAX {
        return;
    }
    LISTED.with(|l| {
        let mut listed = l.borrow_mut();
        let Some(listed) = listed.as_mut() else {
            return;
        };
        if let Some(name) = listed_name(listed, path) {
            let name = name.to_owned();
            listed.kept.push((name, data.to_vec()));
        }
    });
}

/// Reads `path` as UTF-8 text (invalid bytes are an I/O error of kind `InvalidData`).
pub fn read_to_string(path: &Path, cap: u64) -> Result<String, ReadError> {
    let bytes = read(path, cap)?;
    String::from_utf8(bytes).map_err(|e| ReadError {
        path: path.to_path_buf(),
        kind: ReadErrorKind::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cardfill-read-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let dir = tmp();
        let fifo = dir.join("config.json");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let err = read(&fifo, CONFIG_CAP).unwrap_err();
        assert!(
            matches!(err.kind, ReadErrorKind::NotRegular("a FIFO")),
            "{err}"
        );
        assert!(err.to_string().contains("config.json"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn dev_zero_link_is_refused() {
        let dir = tmp();
        let link = dir.join("config.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = read(&link, CONFIG_CAP).unwrap_err();
        assert!(
            matches!(err.kind, ReadErrorKind::NotRegular("a character device")),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_listed_scope_answers_for_its_directory_and_ends_when_dropped() {
        let dir = tmp();
        std::fs::write(dir.join("config.json"), b"{}").unwrap();
        {
            let _scope = ListedScope::new(&dir, ["config.json"]);
            // Created after the listing: the scope stands for the directory as listed.
            std::fs::write(dir.join("late.json"), b"1").unwrap();
            assert!(!may_exist(&dir.join("late.json")));
            assert!(read(&dir.join("late.json"), 9).unwrap_err().is_not_found());
            // Other spellings and other directories ask the file system.
            assert!(may_exist(&dir.join("sub").join("late.json")));
            assert!(may_exist(&dir.join(".")));
            assert_eq!(read(&dir.join("./late.json"), 9).unwrap(), b"1");
            // A listed file is read once: a change within the scope is not seen again…
            assert_eq!(read(&dir.join("config.json"), 9).unwrap(), b"{}");
            std::fs::write(dir.join("config.json"), b"[]").unwrap();
            assert_eq!(read(&dir.join("config.json"), 9).unwrap(), b"{}");
            // …but its cap still holds.
            assert!(matches!(
                read(&dir.join("config.json"), 1).unwrap_err().kind,
                ReadErrorKind::TooLarge { size: 2, cap: 1 }
            ));
        }
        assert!(may_exist(&dir.join("late.json")));
        assert_eq!(read(&dir.join("late.json"), 9).unwrap(), b"1");
        assert_eq!(read(&dir.join("config.json"), 9).unwrap(), b"[]");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn over_the_cap_is_refused_and_under_is_read() {
        let dir = tmp();
        let f = dir.join("a.json");
        std::fs::write(&f, b"0123456789").unwrap();
        assert_eq!(read(&f, 10).unwrap(), b"0123456789");
        let err = read(&f, 9).unwrap_err();
        assert!(matches!(
            err.kind,
            ReadErrorKind::TooLarge { size: 10, cap: 9 }
        ));
        assert!(read(&dir.join("missing"), 9).unwrap_err().is_not_found());
        assert!(matches!(
            read(&dir, 9).unwrap_err().kind,
            ReadErrorKind::NotRegular("a directory")
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
