//! The floor of reading safetensors headers (issue 14): for each `*.safetensors` file of DIR,
//! open it, read the 8-byte length and the N header bytes, close it. No parsing, no output
//! but the bytes read. `cardfill inspect` cannot do less work than this.
#![allow(clippy::print_stdout)]

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        return ExitCode::from(2);
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return ExitCode::from(2);
    };
    let mut buf = Vec::new();
    let mut total = 0u64;
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .as_encoded_bytes()
            .ends_with(b".safetensors")
        {
            continue;
        }
        let read = |buf: &mut Vec<u8>| -> std::io::Result<u64> {
            let mut file = std::fs::File::open(entry.path())?;
            let mut n = [0u8; 8];
            file.read_exact(&mut n)?;
            let n = u64::from_le_bytes(n);
            buf.resize(usize::try_from(n).unwrap_or(0), 0);
            file.read_exact(buf)?;
            Ok(8 + n)
        };
        match read(&mut buf) {
            Ok(n) => total += n,
            Err(_) => return ExitCode::from(2),
        }
    }
    println!("{total}");
    ExitCode::SUCCESS
}
