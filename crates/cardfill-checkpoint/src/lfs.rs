//! git-lfs pointer files standing in for weights: detected, never parsed as weights; their
//! declared sizes stand in for the real files' sizes.

use std::path::Path;

use cardfill_facts::{Facts, Source, paths};

/// The first line of every git-lfs pointer (git-lfs `docs/spec.md`).
const VERSION_LINE: &str = "version https://git-lfs.github.com/spec/v1\n";
/// Pointers "should be small (less than 200 bytes)"; anything over 1 KiB is not one.
const MAX_POINTER_BYTES: u64 = 1024;

/// A parsed git-lfs pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pointer {
    /// `sha256:<hex>`.
    pub oid: String,
    /// Bytes of the real file.
    pub size: u64,
}

/// Reads `path` as a git-lfs pointer, if it is one.
pub fn pointer(path: &Path) -> Option<Pointer> {
    let text = cardfill_facts::read::read_to_string(path, MAX_POINTER_BYTES).ok()?;
    parse(&text)
}

/// Parses pointer text.
pub fn parse(text: &str) -> Option<Pointer> {
    let rest = text.strip_prefix(VERSION_LINE)?;
    let mut oid = None;
    let mut size = None;
    for line in rest.lines() {
        match line.split_once(' ') {
            Some(("oid", v)) => oid = Some(v.to_owned()),
            Some(("size", v)) => size = v.parse().ok(),
            _ => {}
        }
    }
    Some(Pointer {
        oid: oid?,
        size: size?,
    })
}

/// Whether `path` is a git-lfs pointer.
pub fn is_pointer(path: &Path) -> bool {
    pointer(path).is_some()
}

/// File extensions of weight files.
fn is_weight_name(name: &str) -> bool {
    [
        ".safetensors",
        ".bin",
        ".pt",
        ".pth",
        ".ckpt",
        ".gguf",
        ".h5",
        ".msgpack",
        ".onnx",
        ".distcp",
    ]
    .iter()
    .any(|e| name.ends_with(e))
        && name != "training_args.bin"
}

/// Records the weight files of `dir` that are git-lfs pointers: `checkpoint.weights_missing`,
/// and `checkpoint.files`/`checkpoint.bytes` from the pointers when no real weights were found.
/// `names` are the regular files of `dir`, sorted; files in `read` (sorted) were read as
/// weights and are skipped. Returns how many pointers were found.
pub fn record(dir: &Path, names: &[String], read: &[&str], facts: &mut Facts) -> usize {
    // Both lists are sorted: one pass over `read` finds the names in it.
    let mut read = read.iter().peekable();
    let found: Vec<(String, Pointer)> = names
        .iter()
        .filter(|n| {
            while read.next_if(|r| **r < n.as_str()).is_some() {}
            read.peek().is_none_or(|r| **r != n.as_str()) && is_weight_name(n)
        })
        .filter_map(|n| pointer(&dir.join(n)).map(|p| (n.clone(), p)))
        .collect();
    if found.is_empty() {
        return 0;
    }
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    let declared: u64 = found.iter().map(|(_, p)| p.size).sum();
    let origin = if names.len() == 1 {
        names[0].to_owned()
    } else {
        format!("{} (+{} files)", names[0], names.len() - 1)
    };
    facts.set(
        paths::CHECKPOINT_WEIGHTS_MISSING,
        true,
        Source::file(&origin, "git-lfs pointer files, not weights"),
    );
    facts.warn(
        "weights-not-present",
        format!(
            "weights not present: {} git-lfs pointer file(s) (`{}`), declared {} bytes; run `git lfs pull` to count parameters",
            found.len(),
            names[0],
            declared
        ),
    );
    if !facts.contains(paths::CHECKPOINT_FILES) {
        facts.set(
            paths::CHECKPOINT_FILES,
            names.clone(),
            Source::file(&origin, "git-lfs pointer files"),
        );
        facts.set(
            paths::CHECKPOINT_BYTES,
            declared,
            Source::file(&origin, "Σ `size` of git-lfs pointers"),
        );
    }
    found.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_pointer_text() {
        let p = parse(
            "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2e3b6b5c0a8f9e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f\nsize 151098921\n",
        )
        .unwrap();
        assert_eq!(p.size, 151_098_921);
        assert!(parse("version https://git-lfs.github.com/spec/v1\nsize x\n").is_none());
        assert!(parse("{\"not\": \"a pointer\"}").is_none());
    }
}
