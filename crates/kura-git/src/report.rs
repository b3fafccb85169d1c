//! Reads `receive-pack`'s report-status as it streams to the client, to learn which refs a
//! push updated (`ok REF`) without another process. The stream is pkt-lines; with side-band
//! the report travels in band 1 (progress in band 2, errors in band 3), without it the report
//! is the stream itself. Only band 1 is kept, bounded; anything malformed ends the scan with
//! no answer, and the caller falls back to reading the refs.

use std::collections::BTreeSet;

/// Band-1 bytes kept at most (a report of tens of thousands of refs).
const MAX_REPORT: usize = 4 << 20;

#[derive(Debug, Default)]
pub struct ReportScanner {
    /// Bytes of the outer pkt-line stream not yet parsed.
    pending: Vec<u8>,
    /// `None` until the first packet tells whether side-band is in use.
    sideband: Option<bool>,
    /// The report's own pkt-lines (band 1, or the whole stream without side-band).
    report: Vec<u8>,
    broken: bool,
}

impl ReportScanner {
    pub fn new() -> ReportScanner {
        ReportScanner::default()
    }

    /// Feeds the next bytes of the response.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.broken {
            return;
        }
        self.pending.extend_from_slice(bytes);
        let mut at = 0;
        while let Some((len, payload)) = packet(&self.pending[at..]) {
            let Some(len) = len else {
                self.broken = true;
                break;
            };
            if let Some(p) = payload {
                let sideband = *self
                    .sideband
                    .get_or_insert(matches!(p.first(), Some(1..=3)));
                let data = match (sideband, p.split_first()) {
                    (true, Some((1, rest))) => Some(rest),
                    (true, _) => None,
                    (false, _) => Some(p),
                };
                if let Some(d) = data {
                    if self.report.len() + d.len() > MAX_REPORT {
                        self.broken = true;
                        break;
                    }
                    if sideband {
                        self.report.extend_from_slice(d);
                    } else {
                        // Without side-band the packets are the report's lines themselves.
                        self.report
                            .extend_from_slice(format!("{:04x}", d.len() + 4).as_bytes());
                        self.report.extend_from_slice(d);
                    }
                }
            }
            at += len;
        }
        self.pending.drain(..at);
        if self.pending.len() > 70_000 {
            // No pkt-line is longer than 65 520 bytes.
            self.broken = true;
        }
    }

    /// The refs reported `ok`, if the report was read whole and unpacking succeeded.
    pub fn updated(&self) -> Option<BTreeSet<String>> {
        if self.broken {
            return None;
        }
        let mut ok = BTreeSet::new();
        let mut unpack_ok = false;
        let mut rest = &self.report[..];
        while let Some((len, payload)) = packet(rest) {
            let len = len?;
            if let Some(p) = payload {
                let line = std::str::from_utf8(p).ok()?.trim_end_matches('\n');
                if line == "unpack ok" {
                    unpack_ok = true;
                } else if let Some(name) = line.strip_prefix("ok ") {
                    ok.insert(name.to_string());
                }
            }
            rest = &rest[len..];
        }
        unpack_ok.then_some(ok)
    }
}

/// The next pkt-line of `buf`: `None` when incomplete; `Some((None, _))` when malformed;
/// otherwise its length in bytes and its payload (`None` for flush/delim/response-end).
#[allow(clippy::type_complexity)]
fn packet(buf: &[u8]) -> Option<(Option<usize>, Option<&[u8]>)> {
    let head = buf.get(..4)?;
    let Some(len) = std::str::from_utf8(head)
        .ok()
        .and_then(|h| usize::from_str_radix(h, 16).ok())
    else {
        return Some((None, None));
    };
    match len {
        0..=2 => Some((Some(4), None)),
        3 => Some((None, None)),
        n => {
            let p = buf.get(4..n)?;
            Some((Some(n), Some(p)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(s: &[u8]) -> Vec<u8> {
        let mut v = format!("{:04x}", s.len() + 4).into_bytes();
        v.extend_from_slice(s);
        v
    }

    fn band(n: u8, inner: &[u8]) -> Vec<u8> {
        let mut p = vec![n];
        p.extend_from_slice(inner);
        pkt(&p)
    }

    fn report(lines: &[&str]) -> Vec<u8> {
        let mut r = Vec::new();
        for l in lines {
            r.extend(pkt(format!("{l}\n").as_bytes()));
        }
        r.extend_from_slice(b"0000");
        r
    }

    fn names(s: &[&str]) -> Option<BTreeSet<String>> {
        Some(s.iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn sideband_report_split_anywhere() {
        let inner = report(&[
            "unpack ok",
            "ok refs/heads/main",
            "ng refs/heads/x non-fast-forward",
            "ok refs/tags/v1",
        ]);
        let mut stream = band(2, b"Resolving deltas: 100%\r");
        stream.extend(band(1, &inner[..7]));
        stream.extend(band(2, b"remote: hello\n"));
        stream.extend(band(1, &inner[7..]));
        stream.extend_from_slice(b"0000");
        for cut in 0..stream.len() {
            let mut s = ReportScanner::new();
            s.feed(&stream[..cut]);
            s.feed(&stream[cut..]);
            assert_eq!(
                s.updated(),
                names(&["refs/heads/main", "refs/tags/v1"]),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn report_without_sideband() {
        let mut s = ReportScanner::new();
        s.feed(&report(&[
            "unpack ok",
            "ok refs/heads/main",
            "option refname refs/heads/main",
        ]));
        assert_eq!(s.updated(), names(&["refs/heads/main"]));
    }

    #[test]
    fn failed_unpack_or_garbage_gives_no_answer() {
        let mut s = ReportScanner::new();
        s.feed(&band(
            1,
            &report(&[
                "unpack index-pack abnormal exit",
                "ng refs/heads/main unpacker error",
            ]),
        ));
        assert_eq!(s.updated(), None);
        let mut s = ReportScanner::new();
        s.feed(b"zzzz not a pkt-line");
        assert_eq!(s.updated(), None);
        let mut s = ReportScanner::new();
        s.feed(b"0003");
        assert_eq!(s.updated(), None);
        assert_eq!(
            ReportScanner::new().updated(),
            None,
            "nothing read: no answer"
        );
    }

    #[test]
    fn oversized_reports_are_dropped() {
        let mut s = ReportScanner::new();
        let chunk = band(1, &vec![b'x'; 65_000]);
        for _ in 0..80 {
            s.feed(&chunk);
        }
        assert_eq!(s.updated(), None);
    }
}
