//! A torch checkpoint (zip, legacy or bare pickle) read from arbitrary bytes.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use cardfill_checkpoint::pytorch::{read_from, state_dict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    match read_from(&mut c, data.len() as u64, Path::new("fuzz.bin")) {
        Ok(tf) => {
            let _ = state_dict(&tf);
        }
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
});
