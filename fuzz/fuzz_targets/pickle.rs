//! The pickle walker on arbitrary bytes: never panics, bounded time and memory.
#![no_main]

use cardfill_checkpoint::pickle::{Limits, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = parse(data, 0, &Limits::default()) {
        // Walk what a state-dict reader walks.
        let _ = p.get(p.root, "state_dict");
        let _ = p.class_of(p.root);
        assert!(p.end <= data.len());
    }
});
