//! Which `git-upload-pack` request bodies ask for a pack that depends on nothing but the
//! request and the repository's refs: a clone (wants, `done`, no `have`), in protocol v0/v1
//! or v2. Those are the ones the pack cache may answer; anything else (negotiation with
//! `have` lines, `ls-refs`, an argument this parser does not know) is `None`, and git answers.

/// The request with what does not change git's answer removed (the client's `agent=` and
/// `session-id=`), re-encoded as pkt-lines: two clients of different git versions asking for
/// the same pack get the same key. `None`: not a clone request, do not cache.
pub fn clone_request_key(body: &[u8]) -> Option<Vec<u8>> {
    let mut pkts = Pkts { rest: body };
    let mut out = Vec::with_capacity(body.len());
    match pkts.next()? {
        Pkt::Data(first) if first.starts_with(b"want ") => v0(first, pkts, &mut out)?,
        Pkt::Data(b"command=fetch") => v2(pkts, &mut out)?,
        _ => return None,
    }
    Some(out)
}

/// Protocol v0/v1 in stateless RPC: `want` lines (capabilities after the first id), shallow
/// and depth lines, a flush, then `done` and nothing more.
fn v0(first: &[u8], mut pkts: Pkts<'_>, out: &mut Vec<u8>) -> Option<()> {
    let mut words = first.split(|&b| b == b' ');
    let mut line: Vec<u8> = Vec::with_capacity(first.len());
    line.extend_from_slice(words.next()?);
    line.push(b' ');
    line.extend_from_slice(words.next()?);
    for cap in words.filter(|c| !c.is_empty() && !is_client_only(c)) {
        line.push(b' ');
        line.extend_from_slice(cap);
    }
    put(out, &line);
    loop {
        match pkts.next()? {
            Pkt::Flush => break,
            Pkt::Data(l) if starts_with_any(l, V0_ARGS) => put(out, l),
            _ => return None,
        }
    }
    out.extend_from_slice(b"0000");
    match pkts.next()? {
        Pkt::Data(b"done") => put(out, b"done"),
        _ => return None,
    }
    pkts.rest.is_empty().then_some(())
}

const V0_ARGS: &[&[u8]] = &[
    b"want ",
    b"shallow ",
    b"deepen ",
    b"deepen-since ",
    b"deepen-not ",
    b"filter ",
];

/// Protocol v2: `command=fetch`, capability lines, a delimiter, then only arguments known not
/// to depend on the client's own objects, `done` among them, and a flush at the very end.
fn v2(mut pkts: Pkts<'_>, out: &mut Vec<u8>) -> Option<()> {
    put(out, b"command=fetch");
    loop {
        match pkts.next()? {
            Pkt::Delim => break,
            Pkt::Data(cap) if is_client_only(cap) => {}
            Pkt::Data(cap) => put(out, cap),
            _ => return None,
        }
    }
    out.extend_from_slice(b"0001");
    let mut done = false;
    loop {
        match pkts.next()? {
            Pkt::Flush => break,
            Pkt::Data(b"done") => {
                done = true;
                put(out, b"done");
            }
            Pkt::Data(arg) if V2_FLAGS.contains(&arg) || starts_with_any(arg, V2_ARGS) => {
                put(out, arg)
            }
            _ => return None,
        }
    }
    out.extend_from_slice(b"0000");
    (done && pkts.rest.is_empty()).then_some(())
}

const V2_FLAGS: &[&[u8]] = &[
    b"thin-pack",
    b"no-progress",
    b"include-tag",
    b"ofs-delta",
    b"deepen-relative",
    b"sideband-all",
];

const V2_ARGS: &[&[u8]] = &[
    b"want ",
    b"want-ref ",
    b"shallow ",
    b"deepen ",
    b"deepen-since ",
    b"deepen-not ",
    b"filter ",
];

fn is_client_only(cap: &[u8]) -> bool {
    cap.starts_with(b"agent=") || cap.starts_with(b"session-id=")
}

fn starts_with_any(line: &[u8], prefixes: &[&[u8]]) -> bool {
    prefixes
        .iter()
        .any(|p| line.starts_with(p) && line.len() > p.len())
}

fn put(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(format!("{:04x}", line.len() + 5).as_bytes());
    out.extend_from_slice(line);
    out.push(b'\n');
}

#[derive(Debug, PartialEq, Eq)]
enum Pkt<'a> {
    Flush,
    Delim,
    /// The line without its trailing newline.
    Data(&'a [u8]),
}

/// pkt-lines: four hex digits of length (header included), `0000` flush, `0001` delimiter;
/// `0002` and anything malformed end the iteration with `None`, which callers read as "not
/// cacheable".
struct Pkts<'a> {
    rest: &'a [u8],
}

impl<'a> Pkts<'a> {
    fn next(&mut self) -> Option<Pkt<'a>> {
        let head = self.rest.get(..4)?;
        if !head.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let len = usize::from_str_radix(std::str::from_utf8(head).ok()?, 16).ok()?;
        match len {
            0 => {
                self.rest = &self.rest[4..];
                Some(Pkt::Flush)
            }
            1 => {
                self.rest = &self.rest[4..];
                Some(Pkt::Delim)
            }
            2..=4 => None,
            _ => {
                let data = self.rest.get(4..len)?;
                self.rest = &self.rest[len..];
                Some(Pkt::Data(data.strip_suffix(b"\n").unwrap_or(data)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(s: &str) -> String {
        format!("{:04x}{s}", s.len() + 4)
    }

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn v0_clone(agent: &str) -> String {
        format!(
            "{}{}0000{}",
            pkt(&format!(
                "want {A} multi_ack_detailed side-band-64k thin-pack ofs-delta {agent}\n"
            )),
            pkt(&format!("want {B}\n")),
            pkt("done\n")
        )
    }

    fn v2_fetch(agent: &str, args: &[&str]) -> String {
        let mut s = pkt("command=fetch") + &pkt(agent) + &pkt("object-format=sha1\n") + "0001";
        for a in args {
            s += &pkt(&format!("{a}\n"));
        }
        s + "0000"
    }

    #[test]
    fn clones_are_recognised_whatever_the_client_version() {
        let a = clone_request_key(v0_clone("agent=git/2.47.3").as_bytes()).unwrap();
        let b = clone_request_key(v0_clone("agent=git/2.39.5").as_bytes()).unwrap();
        assert_eq!(a, b);
        assert!(!String::from_utf8_lossy(&a).contains("agent"));
        let args = ["thin-pack", "ofs-delta", &format!("want {A}"), "done"];
        let c = clone_request_key(v2_fetch("agent=git/2.47.3\n", &args).as_bytes()).unwrap();
        let d = clone_request_key(v2_fetch("agent=git/2.30.0", &args).as_bytes()).unwrap();
        assert_eq!(c, d);
        assert_ne!(a, c);
    }

    #[test]
    fn different_wants_or_options_are_different_keys() {
        let one = v2_fetch("agent=x", &[&format!("want {A}"), "done"]);
        let two = v2_fetch("agent=x", &[&format!("want {B}"), "done"]);
        let quiet = v2_fetch("agent=x", &[&format!("want {A}"), "no-progress", "done"]);
        let keys: Vec<_> = [one, two, quiet]
            .iter()
            .map(|r| clone_request_key(r.as_bytes()).unwrap())
            .collect();
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
    }

    #[test]
    fn negotiation_and_unknown_requests_are_not_cached() {
        let have = v2_fetch(
            "agent=x",
            &[&format!("want {A}"), &format!("have {B}"), "done"],
        );
        let no_done = v2_fetch("agent=x", &[&format!("want {A}")]);
        let unknown = v2_fetch(
            "agent=x",
            &[&format!("want {A}"), "packfile-uris https", "done"],
        );
        let ls_refs = pkt("command=ls-refs") + "0001" + &pkt("peel") + "0000";
        let v0_have = format!(
            "{}0000{}{}",
            pkt(&format!("want {A} side-band-64k\n")),
            pkt(&format!("have {B}\n")),
            pkt("done\n")
        );
        let v0_no_done = format!("{}0000", pkt(&format!("want {A} side-band-64k\n")));
        let trailing = v0_clone("agent=x") + "0000";
        for body in [
            have, no_done, unknown, ls_refs, v0_have, v0_no_done, trailing,
        ] {
            assert_eq!(clone_request_key(body.as_bytes()), None, "{body}");
        }
        for junk in [
            &b""[..],
            b"0",
            b"zzzz",
            b"0003",
            b"00ffwant",
            b"0002",
            b"-001",
        ] {
            assert_eq!(clone_request_key(junk), None);
        }
    }

    #[test]
    fn depth_and_filters_are_part_of_the_key() {
        let full = v2_fetch("agent=x", &[&format!("want {A}"), "done"]);
        let shallow = v2_fetch("agent=x", &[&format!("want {A}"), "deepen 1", "done"]);
        let blobless = v2_fetch(
            "agent=x",
            &[&format!("want {A}"), "filter blob:none", "done"],
        );
        let keys: Vec<_> = [full, shallow, blobless]
            .iter()
            .map(|r| clone_request_key(r.as_bytes()).unwrap())
            .collect();
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert_ne!(keys[1], keys[2]);
    }
}
