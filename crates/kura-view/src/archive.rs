//! `git archive`: a commit's tree as tar.gz or zip, streamed through gix's worktree stream
//! (which applies `export-ignore` and checkout filters like git does).

use std::io::{Seek, SeekFrom, Write};

use gix::bstr::ByteSlice;
use gix_archive::{Format, Options};

use crate::commits;
use crate::open::git;
use crate::{ArchiveFormat, ViewError};

pub(crate) fn archive(
    repo: &gix::Repository,
    commit: &str,
    format: ArchiveFormat,
    prefix: &str,
    out: &mut dyn Write,
) -> Result<(), ViewError> {
    // Prepended verbatim, as `git archive --prefix`, so it must not escape the extraction dir.
    if prefix.starts_with('/')
        || prefix.contains('\0')
        || prefix.contains('\\')
        || prefix.split('/').any(|s| s == "..")
    {
        return Err(ViewError::Invalid(format!(
            "invalid archive prefix: {:?}",
            commits::truncate(prefix)
        )));
    }
    let id = commits::parse_id(commit)?;
    let mut buf = Vec::new();
    let commit = commits::read(repo, &id, &mut buf)?;
    let tree = commit.tree();
    let modification_time = commit.committer().map(|sig| sig.seconds()).unwrap_or(0);
    let (mut stream, _index) = repo.worktree_stream(tree).map_err(git)?;
    let options = Options {
        format: match format {
            ArchiveFormat::TarGz => Format::TarGz {
                compression_level: None,
            },
            ArchiveFormat::Zip => Format::Zip {
                compression_level: None,
            },
        },
        tree_prefix: (!prefix.is_empty()).then(|| prefix.as_bytes().as_bstr().to_owned()),
        modification_time,
    };
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let next = gix::worktree::stream::Stream::next_entry;
    match format {
        ArchiveFormat::TarGz => gix_archive::write_stream(&mut stream, next, &mut out, options),
        // The zip writer never seeks (it writes data descriptors); gix asks for `Seek` anyway.
        ArchiveFormat::Zip => {
            gix_archive::write_stream_seek(&mut stream, next, Forward(&mut out), options)
        }
    }
    .map_err(git)?;
    out.flush().map_err(git)
}

/// A forward-only writer that answers `Seek` only for its current position.
struct Forward<W>(W);

impl<W: Write> Write for Forward<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<W> Seek for Forward<W> {
    fn seek(&mut self, _: SeekFrom) -> std::io::Result<u64> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "archive output cannot seek",
        ))
    }
}
