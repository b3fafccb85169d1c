//! The `Git-Protocol` header: whatever is accepted is short and made of safe characters only.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(p) = kura_proto::git_protocol(data) {
        assert!(p.len() <= 256);
        assert!(p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_=:".contains(&b)));
    }
});
