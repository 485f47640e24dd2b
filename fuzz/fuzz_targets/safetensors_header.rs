//! The safetensors header reader on arbitrary bytes, with the `safetensors` crate as the
//! oracle: where the crate accepts the file, cardfill reports the same tensors, dtypes and
//! shapes; where it refuses, cardfill refuses too, unless the header has a dtype the crate
//! does not know (cardfill counts those: the one documented difference).
#![no_main]

use std::collections::BTreeMap;

use cardfill_checkpoint::safetensors::read_file;
use libfuzzer_sys::fuzz_target;

type Tensors = BTreeMap<String, (String, Vec<u64>)>;

fn crate_reads(bytes: &[u8]) -> Option<Tensors> {
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).ok()?;
    Some(
        metadata
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                let dtype = serde_json::to_value(info.dtype).expect("dtype names serialize");
                let dtype = dtype.as_str().unwrap_or_default().to_owned();
                (
                    name,
                    (dtype, info.shape.iter().map(|&d| d as u64).collect()),
                )
            })
            .collect(),
    )
}

fn crate_knows(dtype: &str) -> bool {
    serde_json::from_value::<safetensors::Dtype>(serde_json::Value::from(dtype)).is_ok()
}

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static PATH: std::path::PathBuf =
            std::env::temp_dir().join(format!("cardfill-fuzz-{}.safetensors", std::process::id()));
    }
    PATH.with(|path| {
        if std::fs::write(path, data).is_err() {
            return;
        }
        let ours = read_file(path, &mut Vec::new());
        match (crate_reads(data), ours) {
            (Some(theirs), Ok(h)) => {
                let ours: Tensors = h
                    .tensors
                    .iter()
                    .map(|t| (t.name.clone(), (t.dtype.clone(), t.shape.clone())))
                    .collect();
                assert_eq!(ours.len(), h.tensors.len(), "tensor names are unique");
                assert_eq!(ours, theirs, "same tensors as the safetensors crate");
            }
            (Some(_), Err(e)) => panic!("the crate accepts, cardfill refuses: {e}"),
            (None, Ok(h)) => assert!(
                h.tensors.iter().any(|t| !crate_knows(&t.dtype)),
                "the crate refuses, cardfill accepts {:?}",
                h.tensors
            ),
            (None, Err(e)) => assert!(!e.to_string().contains('\n')),
        }
    });
});
