//! The `Authorization` header: any bytes give credentials or `Malformed`, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(kura_proto::Credentials::Token(t)) = kura_proto::authorization(Some(data), "kura_") {
        assert!(!t.is_empty());
    }
});
