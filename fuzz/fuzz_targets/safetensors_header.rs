//! The safetensors header reader on arbitrary bytes (through a file: its API reads paths).
#![no_main]

use cardfill_checkpoint::safetensors::read_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static PATH: std::path::PathBuf =
            std::env::temp_dir().join(format!("cardfill-fuzz-{}.safetensors", std::process::id()));
    }
    PATH.with(|path| {
        if std::fs::write(path, data).is_ok() {
            let mut buf = Vec::new();
            if let Err(e) = read_file(path, &mut buf) {
                assert!(!e.to_string().contains('\n'));
            }
        }
    });
});
