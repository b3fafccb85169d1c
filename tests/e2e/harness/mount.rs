//! A folder seen through a `bindfs` mount that caches lookups, attributes and failed lookups
//! the way an NFS client (EFS) does: what one mount created can stay invisible through another.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{cmd, wait_until};

/// `real` mounted at `at` with `bindfs -o entry_timeout=T,attr_timeout=T,negative_timeout=T`;
/// unmounted on drop.
pub struct CachingMount {
    pub at: PathBuf,
}

impl CachingMount {
    pub fn new(real: &Path, at: &Path, cache_secs: u32) -> CachingMount {
        let bindfs = std::env::var("KURA_TEST_BINDFS").unwrap_or_else(|_| "bindfs".into());
        std::fs::create_dir_all(real).expect("the real folder");
        std::fs::create_dir_all(at).expect("the mount point");
        let opts = format!(
            "entry_timeout={cache_secs},attr_timeout={cache_secs},negative_timeout={cache_secs}"
        );
        let out = cmd(
            &bindfs,
            &[
                "-o",
                &opts,
                &real.display().to_string(),
                &at.display().to_string(),
            ],
        )
        .timeout(Duration::from_secs(30))
        .run();
        assert!(
            out.ok(),
            "bindfs could not mount {} at {} (tests/run installs bindfs; FUSE needs root and /dev/fuse):\n{}",
            real.display(),
            at.display(),
            out.all()
        );
        let m = CachingMount {
            at: at.to_path_buf(),
        };
        wait_until(Duration::from_secs(10), "the bindfs mount", || m.mounted());
        m
    }

    fn mounted(&self) -> bool {
        let at = self.at.display().to_string();
        std::fs::read_to_string("/proc/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(at.as_str()))
    }
}

impl Drop for CachingMount {
    fn drop(&mut self) {
        let at = self.at.display().to_string();
        for _ in 0..50 {
            if !self.mounted() {
                return;
            }
            let _ = cmd("fusermount", &["-u", &at])
                .timeout(Duration::from_secs(10))
                .run();
            if !self.mounted() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = cmd("umount", &["-l", &at])
            .timeout(Duration::from_secs(10))
            .run();
    }
}
