//! receive-pack's output as Kura scans it for the push log: any bytes, split anywhere, never
//! panic, and the answer does not depend on where the stream was split.
#![no_main]
use kura_git::report::ReportScanner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let cut = (cut as usize).min(stream.len());
    let mut whole = ReportScanner::new();
    whole.feed(stream);
    let mut split = ReportScanner::new();
    split.feed(&stream[..cut]);
    split.feed(&stream[cut..]);
    assert_eq!(whole.updated(), split.updated());
});
