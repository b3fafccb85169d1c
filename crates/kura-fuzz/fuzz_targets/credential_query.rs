//! git's credential-helper query: any text gives a query, values never span lines.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let q = kura_proto::credential_query(s);
    for v in [q.protocol, q.host, q.path].into_iter().flatten() {
        assert!(!v.contains('\n'));
    }
});
