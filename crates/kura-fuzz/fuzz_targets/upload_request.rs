//! Which upload-pack requests are clones: never a panic, and a key is always well-formed
//! pkt-lines that parse as a clone again (the key of a key is itself).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(key) = kura_proto::upload_request::clone_request_key(data) {
        assert_eq!(
            kura_proto::upload_request::clone_request_key(&key).as_deref(),
            Some(&key[..])
        );
    }
});
