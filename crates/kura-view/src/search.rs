//! Code search (`git grep -i -F` over one commit's tree) and finding files by path.

use std::collections::BinaryHeap;
use std::ops::ControlFlow;
use std::time::Instant;

use gix::bstr::{ByteSlice, Finder};
use gix::objs::tree::EntryKind as Mode;

use crate::commits;
use crate::paths;
use crate::tree::{is_binary, read_blob, size_of};
use crate::{FileMatch, LineMatch, SearchLimits, SearchResult, ViewError};

/// Characters of a matching line kept around its first match.
const MAX_LINE_CHARS: usize = 500;
/// Characters kept before the first match when a long line is cut.
const LEAD_CHARS: usize = 100;

/// Files (not symlinks or submodules) are searched in path order. `max_files` bounds the
/// files read (the cost), `max_matches` the matching lines; `truncated` is set only when a
/// further file or match was left out.
pub(crate) fn grep(
    repo: &gix::Repository,
    commit: &str,
    query: &str,
    limits: &SearchLimits,
) -> Result<SearchResult, ViewError> {
    if query.is_empty() {
        return Err(ViewError::Invalid("empty search".into()));
    }
    let root = commits::tree_of(repo, &commits::parse_id(commit)?)?;
    let mut result = SearchResult::default();
    if query.contains('\n') {
        return Ok(result); // no line can contain it
    }
    let needle = query.as_bytes().to_ascii_lowercase();
    let finder = Finder::new(&needle);
    let (mut matches, mut searched) = (0usize, 0usize);
    paths::walk(repo, root, |path, entry| {
        if Instant::now() >= limits.deadline {
            result.truncated = true;
            return Ok(ControlFlow::Break(()));
        }
        if !matches!(entry.mode, Mode::Blob | Mode::BlobExecutable)
            || size_of(repo, entry.id)?.1 > limits.max_file_bytes
        {
            return Ok(ControlFlow::Continue(()));
        }
        if searched == limits.max_files {
            result.truncated = true;
            return Ok(ControlFlow::Break(()));
        }
        searched += 1;
        let data = read_blob(repo, entry.id)?;
        if is_binary(&data) {
            return Ok(ControlFlow::Continue(()));
        }
        let lower = data.to_ascii_lowercase();
        let mut lines = Vec::new();
        let (mut from, mut line_no, mut counted) = (0usize, 1u32, 0usize);
        while let Some(found) = finder.find(&lower[from..]) {
            let at = from + found;
            if matches == limits.max_matches {
                result.truncated = true;
                break;
            }
            let start = lower[..at].rfind_byte(b'\n').map_or(0, |i| i + 1);
            let end = lower[at..].find_byte(b'\n').map_or(lower.len(), |i| at + i);
            line_no += data[counted..start].find_iter(b"\n").count() as u32;
            counted = start;
            lines.push(line_match(&data[start..end], line_no, &needle));
            matches += 1;
            from = end;
        }
        if !lines.is_empty() {
            result.files.push(FileMatch {
                path: String::from_utf8_lossy(path).into_owned(),
                lines,
            });
        }
        Ok(if result.truncated {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    })?;
    Ok(result)
}

/// The line as text (lossy UTF-8), its match ranges, cut to `MAX_LINE_CHARS` characters.
fn line_match(line: &[u8], line_no: u32, needle: &[u8]) -> LineMatch {
    let mut text = line.to_str_lossy().into_owned();
    if text.ends_with('\r') {
        text.pop();
    }
    // Matched again in the lossy text: invalid bytes may have shifted offsets.
    let lower = text.as_bytes().to_ascii_lowercase();
    let ranges: Vec<(usize, usize)> = lower
        .find_iter(needle)
        .map(|at| (at, at + needle.len()))
        .collect();
    let chars = text.chars().count();
    if chars <= MAX_LINE_CHARS {
        return LineMatch {
            line_no,
            text,
            ranges,
        };
    }
    let first = ranges.first().map_or(0, |r| r.0);
    let first_char = text[..first].chars().count();
    let start_char = first_char
        .saturating_sub(LEAD_CHARS)
        .min(chars - MAX_LINE_CHARS);
    let byte_at = |n: usize| text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
    let (start, end) = (byte_at(start_char), byte_at(start_char + MAX_LINE_CHARS));
    let ranges = ranges
        .into_iter()
        .filter(|r| r.0 >= start && r.0 < end)
        .map(|r| (r.0 - start, r.1.min(end) - start))
        .collect();
    LineMatch {
        line_no,
        text: text[start..end].to_owned(),
        ranges,
    }
}

/// Case-insensitive (Unicode lower case) substring match on full paths of files, symlinks
/// included, submodules not; shortest path first, then alphabetical.
pub(crate) fn find_files(
    repo: &gix::Repository,
    commit: &str,
    query: &str,
    limit: usize,
) -> Result<Vec<String>, ViewError> {
    let root = commits::tree_of(repo, &commits::parse_id(commit)?)?;
    let needle = query.to_lowercase();
    // The best `limit` so far; the heap's top is the worst of them.
    let mut best: BinaryHeap<(usize, String)> = BinaryHeap::new();
    if limit == 0 {
        return Ok(Vec::new());
    }
    paths::walk(repo, root, |path, entry| {
        if entry.mode == Mode::Commit {
            return Ok(ControlFlow::Continue(()));
        }
        let path = String::from_utf8_lossy(path);
        if path.to_lowercase().contains(&needle) {
            let candidate = (path.len(), path.into_owned());
            if best.len() < limit {
                best.push(candidate);
            } else if best.peek().is_some_and(|worst| candidate < *worst) {
                best.pop();
                best.push(candidate);
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(best
        .into_sorted_vec()
        .into_iter()
        .map(|(_, path)| path)
        .collect())
}
