//! The GGUF header parser on arbitrary bytes.
#![no_main]

use std::io::Cursor;

use cardfill_checkpoint::gguf::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse(Cursor::new(data), data.len() as u64);
});
