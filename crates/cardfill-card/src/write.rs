//! Writing the card to disk without losing a byte, following a planted link or widening who
//! may read it.
//!
//! - Two `fill`s on one directory run one after the other (an advisory `flock` on the
//!   directory, with a timeout).
//! - The new card goes to a temporary file `.<card>.cardfill-<pid>-<n>.tmp` created with
//!   `O_CREAT | O_EXCL | O_NOFOLLOW`, with the old card's owner, group and mode when the process
//!   may set them (never readable by more people than before), then is swapped with the card by
//!   one `renameat2(RENAME_EXCHANGE)`. What comes out is compared with the text the merge
//!   started from: if an editor saved meanwhile, the merge runs again on the fresh text and is
//!   swapped in again (bounded retries), so the editor's save is never lost. The old card is
//!   renamed whole to `<card>.bak` (it keeps its owner and mode; a planted `.bak` link is
//!   replaced, never written through). Where the filesystem cannot exchange, the card is
//!   compared just before a plain rename and the backup is written to its own temporary file.
//! - A symlinked card is followed only into the checkpoint directory (or when named with
//!   `--card`), never into a Hugging Face cache blob.
//! - Temporary files of `fill`s that died (the process is gone, same owner) are removed.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use cardfill_facts::read::{self, CARD_CAP, ReadError};
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::CardError;

/// How many times the merge runs again when the card changes under it.
pub const MAX_RETRIES: usize = 16;
/// How long `fill` waits for another `fill` of the same directory.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a card that suddenly reads empty or missing is watched for an editor's save.
pub const SETTLE: Duration = Duration::from_millis(500);
/// The marker in cardfill's temporary file names: `.<card>.cardfill-<pid>-<n>.tmp`.
pub const TEMP_MARKER: &str = ".cardfill-";

/// Why the card could not be written. Each message names the file; "nothing changed" means the
/// card on disk is as it was.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The card is a symlink to a file outside the checkpoint directory.
    #[error(
        "`{link}` is a symlink to `{target}`, outside the checkpoint directory: refused, nothing changed; pass `--card {target}` to write there"
    )]
    LinkOutside {
        /// The link.
        link: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// The card is a symlink into a Hugging Face cache's `blobs/`.
    #[error(
        "`{link}` points into the Hugging Face cache (`{target}`): refused, nothing changed; copy the snapshot (`cp -rL SNAPSHOT DIR`) and fill the copy"
    )]
    HubCache {
        /// The link.
        link: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// Another `fill` held the directory's lock for [`LOCK_TIMEOUT`].
    #[error(
        "another `cardfill fill` has been writing in `{0}` for {secs} s: nothing changed; try again when it is done",
        secs = LOCK_TIMEOUT.as_secs()
    )]
    Locked(PathBuf),
    /// The card is not UTF-8.
    #[error(
        "`{path}` is not UTF-8 text (invalid byte at offset {offset}): save it as UTF-8 or pass another --card"
    )]
    NotUtf8 {
        /// The card.
        path: PathBuf,
        /// The first invalid byte.
        offset: usize,
    },
    /// The card could not be read.
    #[error("cannot read `{}`: {}", .0.path.display(), .0.reason())]
    Read(#[from] ReadError),
    /// A system call failed.
    #[error("cannot {action} `{path}`: {source}: {hint}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
        /// What to do, and what state the card is in.
        hint: &'static str,
    },
    /// The card kept changing for [`MAX_RETRIES`] merges.
    #[error(
        "`{0}` kept changing while cardfill wrote it: it holds the latest saved text, unchanged by cardfill; run `cardfill fill` again"
    )]
    KeptChanging(PathBuf),
    /// The merge failed on a card an editor saved meanwhile.
    #[error(transparent)]
    Merge(#[from] CardError),
}

impl WriteError {
    /// The file the error is about, where there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::LinkOutside { link, .. } | Self::HubCache { link, .. } => Some(link),
            Self::Locked(p) | Self::KeptChanging(p) => Some(p),
            Self::NotUtf8 { path, .. } | Self::Io { path, .. } => Some(path),
            Self::Read(e) => Some(&e.path),
            Self::Merge(_) => None,
        }
    }
}

const UNCHANGED: &str = "nothing changed; check that the directory exists and is writable";

fn io(action: &'static str, path: &Path, e: impl Into<std::io::Error>) -> WriteError {
    WriteError::Io {
        action,
        path: path.to_path_buf(),
        source: e.into(),
        hint: UNCHANGED,
    }
}

/// Owner, group and mode of the card as read.
#[derive(Clone, Copy, Debug)]
struct Owner {
    uid: u32,
    gid: u32,
    mode: u32,
}

/// The card, opened for a fill: where it really is, its text, and (when writing) the
/// directory's lock.
#[derive(Debug)]
pub struct CardFile {
    dir: OwnedFd,
    dir_path: PathBuf,
    name: OsString,
    path: PathBuf,
    text: Option<String>,
    owner: Option<Owner>,
    locked: bool,
}

/// Where a symlinked card may be written.
fn resolve(card: &Path, checkpoint_dir: &Path, explicit: bool) -> Result<PathBuf, WriteError> {
    let Ok(meta) = std::fs::symlink_metadata(card) else {
        return Ok(card.to_path_buf());
    };
    if !meta.file_type().is_symlink() {
        return Ok(card.to_path_buf());
    }
    let target = match std::fs::canonicalize(card) {
        Ok(t) => t,
        // A dangling link: its directory must exist; the card will be created there.
        Err(_) => {
            let link = std::fs::read_link(card).map_err(|e| io("read the link", card, e))?;
            let joined = card.parent().unwrap_or(Path::new(".")).join(link);
            let parent = joined.parent().unwrap_or(Path::new("."));
            let parent = std::fs::canonicalize(parent)
                .map_err(|e| io("follow the link to its directory", card, e))?;
            parent.join(joined.file_name().unwrap_or(OsStr::new("README.md")))
        }
    };
    if target
        .components()
        .any(|c| c == Component::Normal(OsStr::new("blobs")))
    {
        return Err(WriteError::HubCache {
            link: card.to_path_buf(),
            target,
        });
    }
    if explicit {
        return Ok(target);
    }
    let inside = std::fs::canonicalize(checkpoint_dir).is_ok_and(|d| target.starts_with(d));
    if inside {
        Ok(target)
    } else {
        Err(WriteError::LinkOutside {
            link: card.to_path_buf(),
            target,
        })
    }
}

fn temp_name(card: &OsStr, n: u32) -> OsString {
    let mut s = OsString::from(".");
    s.push(card);
    s.push(format!("{TEMP_MARKER}{}-{n}.tmp", std::process::id()));
    s
}

/// The pid in a temporary file name of cardfill's, if `name` is one.
fn temp_pid(name: &OsStr) -> Option<i32> {
    let s = name.to_str()?;
    let rest = s.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, tail) = rest.rsplit_once(TEMP_MARKER)?;
    let (pid, n) = tail.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

fn backup_name(card: &OsStr) -> OsString {
    let mut s = card.to_os_string();
    s.push(".bak");
    s
}

impl CardFile {
    /// Opens the card at `card` for a fill of `checkpoint_dir`. `explicit`: the path was given
    /// with `--card` (a symlink is then followed anywhere but into a Hugging Face cache).
    /// `lock`: a write follows, so take the directory's lock first and remove stale temporary
    /// files. The card is read whole (at most [`CARD_CAP`] bytes, regular files only).
    pub fn open(
        card: &Path,
        checkpoint_dir: &Path,
        explicit: bool,
        lock: bool,
    ) -> Result<Self, WriteError> {
        let path = resolve(card, checkpoint_dir, explicit)?;
        let dir_path = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| {
                io(
                    "use",
                    &path,
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
                )
            })?
            .to_os_string();
        let dir = rustix::fs::open(
            &dir_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io("open the card's directory", &dir_path, e))?;
        let mut file = Self {
            dir,
            dir_path,
            name,
            path,
            text: None,
            owner: None,
            locked: false,
        };
        if lock {
            file.lock()?;
            file.remove_stale();
        }
        let (bytes, owner) = file.settled(None)?;
        file.text = match bytes {
            Some(b) => Some(String::from_utf8(b).map_err(|e| WriteError::NotUtf8 {
                path: file.path.clone(),
                offset: e.utf8_error().valid_up_to(),
            })?),
            None => None,
        };
        file.owner = owner;
        Ok(file)
    }

    /// The card's text, or `None` when there is no card yet.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// The card's real path (the target of a followed symlink).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The card exists and its owner may not write it (mode without `u+w`): leave it alone
    /// unless forced.
    pub fn read_only(&self) -> bool {
        self.owner.is_some_and(|o| o.mode & 0o200 == 0)
    }

    fn lock(&mut self) -> Result<(), WriteError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match rustix::fs::flock(&self.dir, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    self.locked = true;
                    return Ok(());
                }
                Err(Errno::WOULDBLOCK | Errno::INTR) => {
                    if started.elapsed() >= LOCK_TIMEOUT {
                        return Err(WriteError::Locked(self.dir_path.clone()));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                // Some shared filesystems refuse locks: the comparison before the swap still
                // keeps every edit.
                Err(_) => return Ok(()),
            }
        }
    }

    /// Removes this owner's temporary files whose process is gone.
    fn remove_stale(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir_path) else {
            return;
        };
        let me = rustix::process::geteuid().as_raw();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = temp_pid(&name) else {
                continue;
            };
            let alive = pid == std::process::id() as i32
                || rustix::process::Pid::from_raw(pid).is_none_or(|p| {
                    !matches!(rustix::process::test_kill_process(p), Err(Errno::SRCH))
                });
            if alive {
                continue;
            }
            let mine = rustix::fs::statat(&self.dir, &name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_uid == me);
            if mine {
                let _ = rustix::fs::unlinkat(&self.dir, &name, AtFlags::empty());
            }
        }
    }

    /// Reads the entry `name` of the card's directory without following a link: its text and
    /// bytes, owner and mode; `None` when absent.
    #[allow(clippy::type_complexity)]
    fn read_entry(
        &self,
        name: &OsStr,
    ) -> Result<(Option<(String, Vec<u8>)>, Option<Owner>), WriteError> {
        let shown = self.dir_path.join(name);
        let fd = match rustix::fs::openat(
            &self.dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok((None, None)),
            Err(Errno::LOOP) => {
                return Err(io(
                    "read",
                    &shown,
                    std::io::Error::other("it became a symlink while cardfill ran"),
                ));
            }
            Err(e) => return Err(io("read", &shown, e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| io("read", &shown, e))?;
        let file = File::from(fd);
        let size = read::check_open(&file, &shown, CARD_CAP)?;
        let bytes = read::read_open(file, &shown, size, CARD_CAP)?;
        let text = String::from_utf8(bytes.clone()).map_err(|e| WriteError::NotUtf8 {
            path: shown.clone(),
            offset: e.utf8_error().valid_up_to(),
        })?;
        let owner = Owner {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
        };
        Ok((Some((text, bytes)), Some(owner)))
    }

    #[allow(clippy::type_complexity)]
    fn read_current(&self) -> Result<(Option<(String, Vec<u8>)>, Option<Owner>), WriteError> {
        let name = self.name.clone();
        self.read_entry(&name)
    }

    /// The card's bytes now. A card that reads empty, or missing after it had text, may be an
    /// editor between truncating (or removing) and writing it: wait for the save to land, up
    /// to [`SETTLE`], before believing it.
    fn settled(
        &self,
        expect: Option<&[u8]>,
    ) -> Result<(Option<Vec<u8>>, Option<Owner>), WriteError> {
        let had_text = expect.is_some_and(|e| !e.is_empty());
        let started = Instant::now();
        loop {
            let (current, owner) = self.read_current()?;
            let current = current.map(|(_, b)| b);
            let waiting = match &current {
                Some(b) => b.is_empty(),
                None => had_text,
            };
            if !waiting || started.elapsed() >= SETTLE {
                return Ok((current, owner));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Creates a temporary file holding `bytes`, with the card's owner and mode where allowed.
    fn create_temp(&self, bytes: &[u8]) -> Result<OsString, WriteError> {
        for n in 0..1000 {
            let name = temp_name(&self.name, n);
            let mode = if self.owner.is_some() { 0o600 } else { 0o666 };
            let fd = match rustix::fs::openat(
                &self.dir,
                &name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode),
            ) {
                Ok(fd) => fd,
                // Something (perhaps planted) has this name: take the next.
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(io("create a temporary file in", &self.dir_path, e)),
            };
            let done = self.fill_temp(fd, bytes);
            if let Err(e) = done {
                let _ = rustix::fs::unlinkat(&self.dir, &name, AtFlags::empty());
                return Err(e);
            }
            return Ok(name);
        }
        Err(io(
            "create a temporary file in",
            &self.dir_path,
            std::io::Error::other("1000 names taken"),
        ))
    }

    fn fill_temp(&self, fd: OwnedFd, bytes: &[u8]) -> Result<(), WriteError> {
        let shown = &self.dir_path;
        if let Some(o) = self.owner {
            let mut mode = o.mode;
            let st = rustix::fs::fstat(&fd).map_err(|e| io("write in", shown, e))?;
            if st.st_uid != o.uid || st.st_gid != o.gid {
                let uid = (st.st_uid != o.uid).then(|| rustix::fs::Uid::from_raw(o.uid));
                let gid = (st.st_gid != o.gid).then(|| rustix::fs::Gid::from_raw(o.gid));
                if rustix::fs::fchown(&fd, uid, gid).is_err() {
                    // At least the group: the owner is then this user.
                    let _ = rustix::fs::fchown(&fd, None, gid);
                }
                let now = rustix::fs::fstat(&fd).map_err(|e| io("write in", shown, e))?;
                // Never readable by more people than before.
                if now.st_gid != o.gid {
                    mode &= !0o070;
                }
                if now.st_uid != o.uid {
                    mode &= !0o7000;
                }
            }
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(|e| io("set the mode of a temporary file in", shown, e))?;
        }
        let mut file = File::from(fd);
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| io("write a temporary file in", shown, e))
    }

    fn sync_dir(&self) {
        let _ = rustix::fs::fsync(&self.dir);
    }

    /// Writes `text` as the card. If the card changed on disk since it was read, `remerge`
    /// runs again on the fresh text (`None`: the card was deleted) and its result is written
    /// instead, up to [`MAX_RETRIES`] times. `backup`: keep the replaced card as `<card>.bak`.
    pub fn write(
        mut self,
        text: String,
        backup: bool,
        mut remerge: impl FnMut(Option<&str>) -> Result<String, CardError>,
    ) -> Result<(), WriteError> {
        if !self.locked {
            self.lock()?;
            self.remove_stale();
        }
        // The text the card path is believed to hold: the merge started from it.
        let mut expect: Option<Vec<u8>> = self.text.take().map(String::into_bytes);
        let mut new = text;
        let mut exchange = true;
        for _ in 0..MAX_RETRIES {
            // Compare first: a save seen now costs no swap.
            let (current, owner) = self.settled(expect.as_deref())?;
            if current != expect {
                self.owner = owner;
                let fresh = current.map(|b| String::from_utf8_lossy(&b).into_owned());
                new = remerge(fresh.as_deref())?;
                expect = fresh.map(String::into_bytes);
                continue;
            }
            let tmp = self.create_temp(new.as_bytes())?;
            let flags = if expect.is_some() {
                RenameFlags::EXCHANGE
            } else {
                RenameFlags::NOREPLACE
            };
            let swapped = if exchange {
                rustix::fs::renameat_with(&self.dir, &tmp, &self.dir, &self.name, flags)
            } else {
                Err(Errno::INVAL)
            };
            match swapped {
                Ok(()) if expect.is_none() => {
                    self.sync_dir();
                    return Ok(());
                }
                Ok(()) => {
                    // `tmp` now holds what was at the card's path.
                    let out = match self.read_entry(&tmp) {
                        Ok((t, _)) => t.map(|(_, b)| b),
                        Err(e) => {
                            self.undo(&tmp, new.as_bytes())?;
                            return Err(e);
                        }
                    };
                    if out == expect {
                        return self.finish(&tmp, backup);
                    }
                    // An editor saved in between: put its file back at once; the next round
                    // reads it (once its save is done) and merges again.
                    self.undo(&tmp, new.as_bytes())?;
                }
                Err(Errno::EXIST | Errno::NOENT) => {
                    // Created or deleted in between: read it again.
                    let _ = rustix::fs::unlinkat(&self.dir, &tmp, AtFlags::empty());
                }
                Err(Errno::INVAL | Errno::NOSYS | Errno::NOTSUP) => {
                    exchange = false;
                    if self.compare_and_rename(&tmp, expect.as_deref(), backup)? {
                        return Ok(());
                    }
                }
                Err(e) => {
                    let _ = rustix::fs::unlinkat(&self.dir, &tmp, AtFlags::empty());
                    return Err(io("replace", &self.path, e));
                }
            }
        }
        Err(WriteError::KeptChanging(self.path.clone()))
    }

    /// The swap is verified: the old card in `old` becomes the backup, or goes.
    fn finish(&self, old: &OsStr, backup: bool) -> Result<(), WriteError> {
        if backup {
            let bak = backup_name(&self.name);
            if let Err(e) = rustix::fs::renameat(&self.dir, old, &self.dir, &bak) {
                self.sync_dir();
                return Err(WriteError::Io {
                    action: "keep the previous card as",
                    path: self.dir_path.join(&bak),
                    source: e.into(),
                    hint: "the card was written; the previous one is kept under the temporary name beside it",
                });
            }
        } else {
            let _ = rustix::fs::unlinkat(&self.dir, old, AtFlags::empty());
        }
        self.sync_dir();
        Ok(())
    }

    /// Swaps `tmp` (an editor's save that came out of the card's path) back in. What comes
    /// out should be `ours`; if an editor saved again meanwhile, that newer save goes back in
    /// instead.
    fn undo(&self, tmp: &OsStr, ours: &[u8]) -> Result<(), WriteError> {
        let kept = |e: Errno| WriteError::Io {
            action: "put back the text saved meanwhile in",
            path: self.path.clone(),
            source: e.into(),
            hint: "that text is kept beside the card under the temporary name",
        };
        let mut at_tmp = self.read_entry(tmp)?.0.map(|(_, b)| b);
        let mut expect_out = ours.to_vec();
        for _ in 0..MAX_RETRIES {
            rustix::fs::renameat_with(&self.dir, tmp, &self.dir, &self.name, RenameFlags::EXCHANGE)
                .map_err(kept)?;
            let came = self.read_entry(tmp)?.0.map(|(_, b)| b);
            if came.as_deref() == Some(expect_out.as_slice()) {
                let _ = rustix::fs::unlinkat(&self.dir, tmp, AtFlags::empty());
                self.sync_dir();
                return Ok(());
            }
            // A newer save replaced ours meanwhile: it goes back in too.
            expect_out = at_tmp.unwrap_or_default();
            at_tmp = came;
        }
        Err(WriteError::KeptChanging(self.path.clone()))
    }

    /// Without an atomic exchange: compare the card with `base` just before a plain rename;
    /// `false` when it changed (the temporary file is removed).
    fn compare_and_rename(
        &self,
        tmp: &OsStr,
        base: Option<&[u8]>,
        backup: bool,
    ) -> Result<bool, WriteError> {
        let drop_tmp = || {
            let _ = rustix::fs::unlinkat(&self.dir, tmp, AtFlags::empty());
        };
        let current = match self.read_current() {
            Ok((t, _)) => t.map(|(_, b)| b),
            Err(e) => {
                drop_tmp();
                return Err(e);
            }
        };
        if current.as_deref() != base {
            drop_tmp();
            return Ok(false);
        }
        if let (Some(old), true) = (base, backup) {
            let bak_tmp = match self.create_temp(old) {
                Ok(n) => n,
                Err(e) => {
                    drop_tmp();
                    return Err(e);
                }
            };
            let bak = backup_name(&self.name);
            if let Err(e) = rustix::fs::renameat(&self.dir, &bak_tmp, &self.dir, &bak) {
                let _ = rustix::fs::unlinkat(&self.dir, &bak_tmp, AtFlags::empty());
                drop_tmp();
                return Err(io("back up the card as", &self.dir_path.join(bak), e));
            }
        }
        if let Err(e) = rustix::fs::renameat(&self.dir, tmp, &self.dir, &self.name) {
            drop_tmp();
            return Err(io("replace", &self.path, e));
        }
        self.sync_dir();
        Ok(true)
    }
}

/// Whether `name` is one of cardfill's temporary file names.
pub fn is_temp_name(name: &OsStr) -> bool {
    temp_pid(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_the_pid() {
        let n = temp_name(OsStr::new("README.md"), 3);
        assert_eq!(temp_pid(&n), Some(std::process::id() as i32));
        assert!(n.to_string_lossy().starts_with(".README.md.cardfill-"));
        assert_eq!(temp_pid(OsStr::new("README.md")), None);
        assert_eq!(temp_pid(OsStr::new(".x.cardfill-12-a.tmp")), None);
    }
}
