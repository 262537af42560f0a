//! Envoy's serialised header map as the host hands it over (`proxy_get_header_map_pairs`),
//! read in place by `http::header_pairs` on every request the filter sees.
#![no_main]

use auth0_filter_core::http::{header_pairs, serialise_header_map};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(pairs) = header_pairs(data) else {
        return;
    };
    // What was read is what the buffer says: writing the pairs back in the ABI's format gives
    // the buffer's own bytes, up to any header dropped for a name that is not UTF-8.
    let count = u32::from_le_bytes(data[..4].try_into().expect("a count"));
    assert!(pairs.len() <= count as usize);
    if pairs.len() == count as usize {
        let again = serialise_header_map(&pairs).expect("lengths read from u32s");
        assert_eq!(&data[..again.len()], again.as_slice());
    }
});
