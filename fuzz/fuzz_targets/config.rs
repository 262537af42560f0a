//! The plugin configuration: `Config::from_json` is what `on_configure` runs on the bytes
//! Envoy hands over.
#![no_main]

use auth0_filter_core::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Config::from_json(data) {
        // Deterministic: the same bytes always give the same verdict.
        Ok(_) => assert!(Config::from_json(data).is_ok()),
        Err(error) => {
            // Every refusal names the field it is about (or `(root)`).
            assert!(!error.field.is_empty());
            assert!(!error.problem.is_empty());
        }
    }
});
