//! Filesystem and process inspection: tree snapshots, bare repositories, random files, RSS.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Peak resident set size (VmHWM) of a process, in kB.
pub fn rss_kb_peak(pid: u32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

/// Writes `mb` MiB of random (incompressible) data to `path` (`head -c ... /dev/urandom`).
pub fn random_file(path: &Path, mb: u64) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {} /dev/urandom > '{}'",
            mb * 1024 * 1024,
            path.display()
        ))
        .status()
        .expect("head");
    assert!(
        st.success(),
        "could not write random data to {}",
        path.display()
    );
}

/// A list of every file path under `dir` (relative), with sizes, for "nothing changed" checks.
pub fn tree_snapshot(dir: &Path, skip: &[&Path]) -> Vec<(PathBuf, u64)> {
    fn walk(d: &Path, skip: &[&Path], out: &mut Vec<(PathBuf, u64)>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if skip.iter().any(|s| p.starts_with(s)) {
                continue;
            }
            let Ok(md) = fs::symlink_metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                out.push((p.clone(), 0));
                walk(&p, skip, out);
            } else {
                out.push((p, md.len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, skip, &mut out);
    out.sort();
    out
}

/// Bare repositories (`*.git` directories) under `dir`.
pub fn bare_repos(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.join("HEAD").is_file() && p.join("objects").is_dir() {
                    out.push(p);
                } else {
                    walk(&p, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}
