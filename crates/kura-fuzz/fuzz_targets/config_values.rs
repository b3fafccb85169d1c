//! Configuration values: networks parse or are refused, and every duration Kura prints reads
//! back as the same duration.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = kura_proto::parse_net(s);
    if let Ok(d) = kura_proto::parse_duration(s) {
        let printed = kura_proto::format_duration(d);
        assert_eq!(
            kura_proto::parse_duration(&printed).ok(),
            Some(d),
            "{s:?} printed as {printed:?}"
        );
    }
});
