//! The directory's entries, listed once (and only when asked) for every collector of this
//! crate.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::path::Path;

/// The UTF-8 names of a directory's entries, sorted, with which are directories.
pub(crate) struct Listing<'a> {
    dir: &'a Path,
    entries: OnceCell<Entries<'a>>,
}

#[derive(Default)]
struct Entries<'a> {
    /// Borrowed from the checkpoint reader's listing where there is one.
    names: Vec<Cow<'a, str>>,
    /// `is_dir[i]`: whether `names[i]` is a directory (a symbolic link is followed).
    is_dir: Vec<bool>,
}

impl<'a> Listing<'a> {
    /// `dir`, not listed yet.
    pub(crate) fn new(dir: &'a Path) -> Self {
        Listing {
            dir,
            entries: OnceCell::new(),
        }
    }

    /// `dir` as the checkpoint reader listed it: its files, real directories and other
    /// entries (only those are looked at again, to follow links to directories).
    pub(crate) fn from_checkpoint(dir: &'a Path, listed: &'a cardfill_checkpoint::Listing) -> Self {
        let mut found: Vec<(Cow<'a, str>, bool)> = listed
            .files
            .iter()
            .map(|n| (Cow::Borrowed(n.as_str()), false))
            .chain(
                listed
                    .dirs
                    .iter()
                    .map(|n| (Cow::Borrowed(n.as_str()), true)),
            )
            .chain(
                listed
                    .others
                    .iter()
                    .map(|n| (Cow::Borrowed(n.as_str()), dir.join(n).is_dir())),
            )
            .collect();
        found.sort_unstable();
        let (names, is_dir) = found.into_iter().unzip();
        Listing {
            dir,
            entries: OnceCell::from(Entries { names, is_dir }),
        }
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &'a Path {
        self.dir
    }

    /// Every entry's name, sorted; empty when the directory cannot be listed.
    pub(crate) fn names(&self) -> &[Cow<'a, str>] {
        &self.entries().names
    }

    /// Whether the `i`-th of [`Listing::names`] is a directory.
    pub(crate) fn is_dir(&self, i: usize) -> bool {
        self.entries().is_dir.get(i).copied().unwrap_or(false)
    }

    fn entries(&self) -> &Entries<'a> {
        self.entries.get_or_init(|| {
            let Ok(rd) = std::fs::read_dir(self.dir) else {
                return Entries::default();
            };
            // The entry's own type costs no system call; only a link is followed.
            let mut found: Vec<(Cow<'a, str>, bool)> = rd
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let is_dir = match e.file_type() {
                        Ok(t) if !t.is_symlink() => t.is_dir(),
                        _ => e.path().is_dir(),
                    };
                    Some((Cow::Owned(name), is_dir))
                })
                .collect();
            found.sort_unstable();
            let (names, is_dir) = found.into_iter().unzip();
            Entries { names, is_dir }
        })
    }
}
