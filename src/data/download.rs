//! Finding MNIST on disk, and downloading it from public mirrors.
//!
//! # Where MNIST is looked for
//!
//! [`locate_mnist`] returns the first of these directories that holds all four
//! [`MNIST_FILES`], each either gzip-compressed (`NAME.gz`) or plain:
//!
//! 1. the directory given explicitly (a program's `--data DIR`);
//! 2. the directory named by the environment variable `LERNMI_DATA`, if set and not empty;
//! 3. `data/mnist`, relative to the current directory;
//! 4. the user's cache, [`cache_dir`]: `$XDG_CACHE_HOME/lernmi/mnist`, else
//!    `$HOME/.cache/lernmi/mnist` (else `%LOCALAPPDATA%\lernmi\mnist`, for Windows).
//!
//! [`search_path`] lists the same candidates, for error messages. Searching needs no feature.
//!
//! # Downloading (feature `download`, on by default)
//!
//! `download_mnist` fetches the four `.gz` files into a directory (usually [`cache_dir`]),
//! trying the `MIRRORS` that PyTorch and TensorFlow use, in order, for each file.
//! `download_files` is the same engine for any mirrors and files, and `download_published` for
//! files whose published sums are of the `.gz` files themselves (Fashion-MNIST and KMNIST: see
//! [`crate::data::datasets`]).
//!
//! - A file already present whose contents verify is kept and not fetched again.
//! - The body is streamed to a temporary file `.NAME.partial-PID-N` in the target directory,
//!   never held in memory; a body larger than `MAX_DOWNLOAD_BYTES` (announced or actual) is
//!   refused.
//! - The file is flushed to disk, then verified: the SHA-256 of its **decompressed** contents
//!   must match, so a mirror that re-compresses the files still verifies (with
//!   `download_published`, the SHA-256 of the file as downloaded). Only then is it
//!   renamed onto `NAME`, atomically. On any failure the temporary file is removed and an
//!   existing `NAME` is left as it was.
//! - A mirror that fails (HTTP status, network error or timeout, truncated or oversized body,
//!   corrupt gzip, wrong digest) is reported as `DownloadEvent::MirrorFailed` and the next one
//!   is tried; when all fail, [`Error::Download`](crate::Error::Download) names the file and
//!   each mirror's reason. A local I/O error (disk full, no permission) stops at once with
//!   [`Error::Io`](crate::Error::Io).
//! - The connection times out after 30 s, and so does any read that receives nothing, so a dead
//!   network fails rather than hangs. Proxies are taken from the usual environment variables
//!   (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, ...).
//!
//! Nothing is printed: progress goes to the caller's callback as `DownloadEvent`s.

use std::path::{Path, PathBuf};

use crate::data::datasets::MNIST;
#[cfg(any(doc, test))]
use crate::data::MNIST_FILES;

/// The environment variable naming a directory that holds MNIST.
pub const DATA_ENV: &str = "LERNMI_DATA";

/// The candidate directories for MNIST, in the order [`locate_mnist`] tries them.
///
/// `explicit` comes first when given; then `$LERNMI_DATA` when set and not empty; then
/// `data/mnist` (relative to the current directory); then [`cache_dir`] when it can be
/// determined.
pub fn search_path(explicit: Option<&Path>) -> Vec<PathBuf> {
    MNIST.search_path(explicit)
}

/// The first directory of [`search_path`] that holds MNIST (see [`has_mnist`]), if any.
pub fn locate_mnist(explicit: Option<&Path>) -> Option<PathBuf> {
    search_path(explicit).into_iter().find(|dir| has_mnist(dir))
}

/// Whether `dir` holds all four [`MNIST_FILES`], each as `NAME.gz` or `NAME`.
///
/// Only the files' presence is checked, not their contents.
pub fn has_mnist(dir: &Path) -> bool {
    MNIST.has_files(dir)
}

/// Where downloaded MNIST is kept: `$XDG_CACHE_HOME/lernmi/mnist` if `XDG_CACHE_HOME` is an
/// absolute path, else `$HOME/.cache/lernmi/mnist`, else `%LOCALAPPDATA%\lernmi\mnist`; `None`
/// if none of these variables is set.
///
/// The directory need not exist.
pub fn cache_dir() -> Option<PathBuf> {
    MNIST.cache_dir()
}

/// What the download reports while it works (the type exists without the `download` feature
/// too, so that callers need no `cfg`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownloadEvent<'a> {
    /// A mirror answered and its body is being received.
    Started {
        /// The file's name.
        file: &'a str,
        /// The URL it comes from.
        url: &'a str,
        /// The body's length, if the server announced it.
        total_bytes: Option<u64>,
    },
    /// More of the body was received.
    Progress {
        /// The file's name.
        file: &'a str,
        /// Bytes received so far from this URL.
        bytes: u64,
        /// The body's length, if the server announced it.
        total_bytes: Option<u64>,
    },
    /// The file is in place and verified. Sent without a `Started` for a file that was
    /// already present and verified, and so not fetched.
    Finished {
        /// The file's name.
        file: &'a str,
    },
    /// A mirror failed; the next one, if any, is tried.
    MirrorFailed {
        /// The file's name.
        file: &'a str,
        /// The URL that failed.
        url: &'a str,
        /// Why, as text.
        error: String,
    },
}

#[cfg(feature = "download")]
pub use fetch::*;

#[cfg(feature = "download")]
mod fetch {
    use std::fs::{File, OpenOptions};
    use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use flate2::read::MultiGzDecoder;
    use sha2::{Digest, Sha256};

    use super::DownloadEvent;
    use crate::data::datasets::MNIST;
    use crate::{Error, Result};

    /// The MNIST mirrors, tried in this order: PyTorch's (torchvision), then TensorFlow's.
    /// Plain HTTP: the crate carries no TLS stack, and each file is accepted only if the SHA-256
    /// of its contents matches the sum compiled in ([`MNIST_DOWNLOADS`]), so a tampered or damaged
    /// download is refused either way.
    pub const MIRRORS: [&str; 2] = [MNIST.mirrors[0], MNIST.mirrors[1]];

    /// The largest body accepted for one file, 64 MiB (MNIST's largest `.gz` is 9.9 MB).
    pub const MAX_DOWNLOAD_BYTES: u64 = 64 << 20;

    /// The most decompressed bytes hashed for one file, 256 MiB (MNIST's largest is 47 MB);
    /// bounds the work a gzip bomb can cause.
    const MAX_DECOMPRESSED_BYTES: u64 = 256 << 20;

    /// Connection, first-response and per-read timeout.
    const TIMEOUT: Duration = Duration::from_secs(30);

    /// Total time allowed for one body, generous for slow links.
    const BODY_TIMEOUT: Duration = Duration::from_secs(30 * 60);

    /// A file to download, and the SHA-256 of its decompressed contents.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct ExpectedFile<'a> {
        /// The file name on the mirror and on disk, such as `train-images-idx3-ubyte.gz`.
        pub name: &'a str,
        /// SHA-256 of the contents after gzip decompression (of the contents themselves if
        /// they are not gzip-compressed).
        pub decompressed_sha256: [u8; 32],
    }

    /// The four MNIST files as published (`.gz`), with the digests of the decompressed IDX files.
    pub const MNIST_DOWNLOADS: [ExpectedFile<'static>; 4] = [
        ExpectedFile {
            name: "train-images-idx3-ubyte.gz",
            decompressed_sha256: sha256_from_hex(MNIST.sha256[0]),
        },
        ExpectedFile {
            name: "train-labels-idx1-ubyte.gz",
            decompressed_sha256: sha256_from_hex(MNIST.sha256[1]),
        },
        ExpectedFile {
            name: "t10k-images-idx3-ubyte.gz",
            decompressed_sha256: sha256_from_hex(MNIST.sha256[2]),
        },
        ExpectedFile {
            name: "t10k-labels-idx1-ubyte.gz",
            decompressed_sha256: sha256_from_hex(MNIST.sha256[3]),
        },
    ];

    /// A file to download, and the SHA-256 of the file exactly as its maintainers publish it
    /// (the `.gz` bytes, not the contents), the kind of sum listed for Fashion-MNIST and KMNIST.
    ///
    /// Unlike an [`ExpectedFile`], such a file only verifies in the very compression it was
    /// published in, and only as `NAME` itself, never as its decompressed contents.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PublishedFile<'a> {
        /// The file name on the mirror and on disk, such as `train-images-idx3-ubyte.gz`.
        pub name: &'a str,
        /// SHA-256 of the file's bytes as published.
        pub sha256: [u8; 32],
    }

    /// What a downloaded file is checked against.
    #[derive(Clone, Copy)]
    enum Sum {
        /// SHA-256 of the decompressed contents ([`ExpectedFile`]).
        Contents([u8; 32]),
        /// SHA-256 of the file's bytes ([`PublishedFile`]).
        File([u8; 32]),
    }

    /// Downloads the four MNIST files (`NAME.gz`) into `dir`, creating it if needed, from
    /// [`MIRRORS`]; files already present and verified are kept. See [`download_files`].
    ///
    /// ```no_run
    /// use lernmi::data::download::{cache_dir, download_mnist, locate_mnist, DownloadEvent};
    /// use lernmi::data::Mnist;
    ///
    /// let dir = match locate_mnist(None) {
    ///     Some(dir) => dir,
    ///     None => {
    ///         let dir = cache_dir().unwrap_or_else(|| "data/mnist".into());
    ///         download_mnist(&dir, &mut |event| {
    ///             if let DownloadEvent::Finished { file } = event {
    ///                 eprintln!("{file} ready");
    ///             }
    ///         })?;
    ///         dir
    ///     }
    /// };
    /// let mnist = Mnist::load(&dir)?;
    /// # Ok::<(), lernmi::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`download_files`].
    pub fn download_mnist(dir: &Path, progress: &mut dyn FnMut(&DownloadEvent<'_>)) -> Result<()> {
        download_files(dir, &MIRRORS, &MNIST_DOWNLOADS, progress)
    }

    /// Downloads each of `files` into `dir` (created if needed), from `mirrors` tried in order
    /// (each a base URL to which the file name is appended), verifying the SHA-256 of the
    /// decompressed contents before moving each file into place atomically. A file already
    /// present in `dir` whose contents verify is kept and not fetched; so is a `NAME.gz` whose
    /// plain, decompressed `NAME` is present and verifies.
    ///
    /// # Errors
    /// [`Error::BadFile`] if a name is not a plain file name (`a/b`, `..`);
    /// [`Error::Download`] naming the file and, for each mirror, an [`Error::Fetch`] or
    /// [`Error::Checksum`] saying why it failed; [`Error::Io`] for a local file or directory
    /// that cannot be created, written or renamed. Files fetched before the error stay in place.
    pub fn download_files(
        dir: &Path,
        mirrors: &[&str],
        files: &[ExpectedFile<'_>],
        progress: &mut dyn FnMut(&DownloadEvent<'_>),
    ) -> Result<()> {
        let files: Vec<_> = files
            .iter()
            .map(|f| (f.name, Sum::Contents(f.decompressed_sha256)))
            .collect();
        download_checked(dir, mirrors, &files, progress)
    }

    /// [`download_files`] for files whose published digest is of the file itself: each
    /// download must have exactly the bytes the digest was taken of, and a file already in
    /// `dir` is kept only if its bytes verify.
    ///
    /// # Errors
    /// As [`download_files`]; a wrong digest is an [`Error::Fetch`] saying so.
    pub fn download_published(
        dir: &Path,
        mirrors: &[&str],
        files: &[PublishedFile<'_>],
        progress: &mut dyn FnMut(&DownloadEvent<'_>),
    ) -> Result<()> {
        let files: Vec<_> = files
            .iter()
            .map(|f| (f.name, Sum::File(f.sha256)))
            .collect();
        download_checked(dir, mirrors, &files, progress)
    }

    /// The engine of [`download_files`] and [`download_published`].
    fn download_checked(
        dir: &Path,
        mirrors: &[&str],
        files: &[(&str, Sum)],
        progress: &mut dyn FnMut(&DownloadEvent<'_>),
    ) -> Result<()> {
        if let Some((bad, _)) = files.iter().find(|(name, _)| !is_plain_file_name(name)) {
            return Err(Error::BadFile {
                path: dir.join(bad),
                problem: "a download's name must be a plain file name, without directories".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_resolve(Some(TIMEOUT))
            .timeout_connect(Some(TIMEOUT))
            .timeout_recv_response(Some(TIMEOUT))
            .timeout_per_read(Some(TIMEOUT))
            .timeout_recv_body(Some(BODY_TIMEOUT))
            .user_agent(concat!("lernmi/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        for &expected in files {
            download_one(&agent, dir, mirrors, expected, progress)?;
        }
        Ok(())
    }

    /// Brings one file into place, trying each mirror in turn.
    fn download_one(
        agent: &ureq::Agent,
        dir: &Path,
        mirrors: &[&str],
        expected: (&str, Sum),
        progress: &mut dyn FnMut(&DownloadEvent<'_>),
    ) -> Result<()> {
        let file = expected.0;
        let target = dir.join(file);
        if already_present(dir, expected) {
            progress(&DownloadEvent::Finished { file });
            return Ok(());
        }
        let mut tried = Vec::with_capacity(mirrors.len());
        for base in mirrors {
            let url = join_url(base, file);
            let mut temp = TempFile::create(dir, file)?;
            match fetch_verified(agent, &url, expected, temp.file()?, progress) {
                Ok(()) => {
                    temp.persist(&target)?;
                    progress(&DownloadEvent::Finished { file });
                    return Ok(());
                }
                Err(Failure::Local(e)) => return Err(e),
                Err(Failure::Mirror(e)) => {
                    progress(&DownloadEvent::MirrorFailed {
                        file,
                        url: &url,
                        error: e.to_string(),
                    });
                    tried.push(e);
                }
            }
            // `temp` is dropped here, removing the partial file.
        }
        Err(Error::Download {
            file: file.to_string(),
            tried,
        })
    }

    /// Whether `dir/NAME` verifies, or, for `NAME.gz` absent and a digest of the contents,
    /// whether a plain `dir/NAME` without `.gz` does. Anything unreadable counts as not present.
    fn already_present(dir: &Path, (name, sum): (&str, Sum)) -> bool {
        let verifies = |path: &Path| {
            File::open(path)
                .ok()
                .and_then(|mut f| sum_matches(&mut f, sum).ok())
                .is_some_and(|checked| checked.is_ok())
        };
        let target = dir.join(name);
        if target.exists() {
            return verifies(&target);
        }
        matches!(sum, Sum::Contents(_))
            && name
                .strip_suffix(".gz")
                .is_some_and(|plain| verifies(&dir.join(plain)))
    }

    /// Checks `reader`'s bytes against `sum`. The outer error is an I/O failure; the inner one
    /// says why the bytes do not verify.
    fn sum_matches(
        reader: &mut impl Read,
        sum: Sum,
    ) -> std::io::Result<std::result::Result<(), Mismatch>> {
        Ok(match sum {
            Sum::Contents(expected) => match decompressed_sha256(reader)? {
                Ok(actual) if actual == expected => Ok(()),
                Ok(actual) => Err(Mismatch::Contents { expected, actual }),
                Err(problem) => Err(Mismatch::Unusable(problem)),
            },
            Sum::File(expected) => {
                let mut hasher = Sha256::new();
                std::io::copy(reader, &mut hasher)?;
                let actual: [u8; 32] = hasher.finalize().into();
                if actual == expected {
                    Ok(())
                } else {
                    Err(Mismatch::File { expected, actual })
                }
            }
        })
    }

    /// Why downloaded bytes do not verify.
    enum Mismatch {
        /// Corrupt gzip, or too large once decompressed.
        Unusable(String),
        /// The decompressed contents have another digest.
        Contents {
            expected: [u8; 32],
            actual: [u8; 32],
        },
        /// The file's bytes have another digest.
        File {
            expected: [u8; 32],
            actual: [u8; 32],
        },
    }

    /// Why one attempt failed: the mirror (try the next) or this machine (stop).
    enum Failure {
        Mirror(Error),
        Local(Error),
    }

    /// Fetches `url` into `out` (an empty, readable and writable file at `out_path`), syncs it,
    /// and checks its decompressed digest.
    fn fetch_verified(
        agent: &ureq::Agent,
        url: &str,
        (file, sum): (&str, Sum),
        (out, out_path): (&mut File, &Path),
        progress: &mut dyn FnMut(&DownloadEvent<'_>),
    ) -> std::result::Result<(), Failure> {
        let mirror = |problem: String| {
            Failure::Mirror(Error::Fetch {
                url: url.to_string(),
                problem,
            })
        };
        let local = |source: std::io::Error| {
            Failure::Local(Error::Io {
                path: out_path.to_path_buf(),
                source,
            })
        };

        let response = agent.get(url).call().map_err(|e| mirror(e.to_string()))?;
        let body = response.into_body();
        let total_bytes = body.content_length();
        if let Some(total) = total_bytes.filter(|&t| t > MAX_DOWNLOAD_BYTES) {
            return Err(mirror(format!(
                "announces {total} bytes, more than the {MAX_DOWNLOAD_BYTES} accepted"
            )));
        }
        progress(&DownloadEvent::Started {
            file,
            url,
            total_bytes,
        });

        let mut reader = body.into_reader().take(MAX_DOWNLOAD_BYTES + 1);
        let mut writer = BufWriter::new(&mut *out);
        let mut buf = vec![0u8; 64 * 1024];
        let mut bytes = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(mirror(format!("after {bytes} bytes: {e}"))),
            };
            bytes += n as u64;
            if bytes > MAX_DOWNLOAD_BYTES {
                return Err(mirror(format!(
                    "body exceeds the {MAX_DOWNLOAD_BYTES} bytes accepted"
                )));
            }
            writer.write_all(&buf[..n]).map_err(local)?;
            progress(&DownloadEvent::Progress {
                file,
                bytes,
                total_bytes,
            });
        }
        if let Some(total) = total_bytes.filter(|&t| t != bytes) {
            return Err(mirror(format!(
                "truncated: received {bytes} of the {total} bytes announced"
            )));
        }
        writer.flush().map_err(local)?;
        drop(writer);
        out.sync_all().map_err(local)?;

        out.seek(SeekFrom::Start(0)).map_err(local)?;
        match sum_matches(out, sum).map_err(local)? {
            Ok(()) => Ok(()),
            Err(Mismatch::Unusable(problem)) => Err(mirror(problem)),
            // The message of `Error::Checksum` speaks of the decompressed contents.
            Err(Mismatch::File { expected, actual }) => Err(mirror(format!(
                "SHA-256 of the file is {}, expected the published {}",
                to_hex(&actual),
                to_hex(&expected)
            ))),
            Err(Mismatch::Contents { expected, actual }) => Err(Failure::Mirror(Error::Checksum {
                url: url.to_string(),
                expected: to_hex(&expected),
                actual: to_hex(&actual),
            })),
        }
    }

    /// SHA-256 of `reader`'s contents, decompressed if they start with the gzip magic bytes.
    /// The outer error is an I/O failure; the inner one describes unusable contents (corrupt
    /// gzip, or more than [`MAX_DECOMPRESSED_BYTES`]).
    fn decompressed_sha256(
        reader: &mut impl Read,
    ) -> std::io::Result<std::result::Result<[u8; 32], String>> {
        let mut magic = [0u8; 2];
        let mut got = 0;
        while got < magic.len() {
            match reader.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let head = std::io::Cursor::new(magic[..got].to_vec()).chain(reader);
        let gzip = got == 2 && magic == [0x1f, 0x8b];
        let mut contents: Box<dyn Read + '_> = if gzip {
            Box::new(MultiGzDecoder::new(head))
        } else {
            Box::new(head)
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match contents.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if gzip
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::InvalidInput
                                | std::io::ErrorKind::InvalidData
                                | std::io::ErrorKind::UnexpectedEof
                        ) =>
                {
                    return Ok(Err(format!("not a valid gzip stream: {e}")));
                }
                Err(e) => return Err(e),
            };
            total += n as u64;
            if total > MAX_DECOMPRESSED_BYTES {
                return Ok(Err(format!(
                    "decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"
                )));
            }
            hasher.update(&buf[..n]);
        }
        Ok(Ok(hasher.finalize().into()))
    }

    /// Whether `name` names a file directly inside a directory: not empty, not `.` or `..`, no
    /// separator.
    fn is_plain_file_name(name: &str) -> bool {
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\'])
    }

    /// `base` and `name` joined by exactly one `/`.
    fn join_url(base: &str, name: &str) -> String {
        format!("{}/{name}", base.trim_end_matches('/'))
    }

    /// Lower-case hex of a digest.
    fn to_hex(digest: &[u8; 32]) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A digest from 64 hex digits, for constants; checked by a unit test (an invalid digit
    /// reads as 0 rather than stopping the build).
    pub(crate) const fn sha256_from_hex(hex: &str) -> [u8; 32] {
        const fn nibble(c: u8) -> u8 {
            match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => 0,
            }
        }
        let bytes = hex.as_bytes();
        let mut out = [0u8; 32];
        let mut i = 0;
        while i < 32 && 2 * i + 1 < bytes.len() {
            out[i] = (nibble(bytes[2 * i]) << 4) | nibble(bytes[2 * i + 1]);
            i += 1;
        }
        out
    }

    /// Distinguishes temporary files of concurrent downloads within one process.
    static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

    /// A temporary file next to its target, removed on drop unless persisted.
    struct TempFile {
        path: PathBuf,
        file: Option<File>,
    }

    impl TempFile {
        /// Creates a new `dir/.NAME.partial-PID-N`. A name already taken (left by an
        /// interrupted run that had the same process id) is skipped, not reused.
        fn create(dir: &Path, name: &str) -> Result<TempFile> {
            let mut attempts = 0;
            loop {
                let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
                let path = dir.join(format!(".{name}.partial-{}-{n}", std::process::id()));
                match OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                {
                    Ok(file) => {
                        return Ok(TempFile {
                            path,
                            file: Some(file),
                        })
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 100 => {
                        attempts += 1;
                    }
                    Err(source) => return Err(Error::Io { path, source }),
                }
            }
        }

        /// The open file and its path.
        fn file(&mut self) -> Result<(&mut File, &Path)> {
            match self.file.as_mut() {
                Some(file) => Ok((file, &self.path)),
                None => Err(Error::Io {
                    path: self.path.clone(),
                    source: std::io::Error::other("temporary file already closed"),
                }),
            }
        }

        /// Closes the file and renames it onto `target`, replacing any file there.
        fn persist(mut self, target: &Path) -> Result<()> {
            drop(self.file.take());
            std::fs::rename(&self.path, target).map_err(|source| Error::Io {
                path: target.to_path_buf(),
                source,
            })?;
            // Renamed: nothing left for drop to remove.
            self.path = PathBuf::new();
            // Make the rename itself durable; best effort, as not every file system allows it.
            #[cfg(unix)]
            if let Some(dir) = target.parent() {
                let _ = File::open(dir).and_then(|d| d.sync_all());
            }
            Ok(())
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            drop(self.file.take());
            if !self.path.as_os_str().is_empty() {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::data::MNIST_FILES;
        use std::io::Write;

        #[test]
        fn mnist_table_matches_the_published_digests() {
            let published = [
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ];
            for ((entry, hex), name) in MNIST_DOWNLOADS.iter().zip(published).zip(MNIST_FILES) {
                assert_eq!(entry.name, format!("{name}.gz"));
                assert_eq!(to_hex(&entry.decompressed_sha256), hex);
            }
        }

        #[test]
        fn hex_round_trips() {
            let digest: [u8; 32] = Sha256::digest(b"lernmi").into();
            assert_eq!(sha256_from_hex(&to_hex(&digest)), digest);
            assert_eq!(sha256_from_hex(&to_hex(&digest).to_uppercase()), digest);
        }

        #[test]
        fn names_with_directories_are_refused() {
            for name in ["", ".", "..", "../x.gz", "a/b.gz", "a\\b.gz", "/abs.gz"] {
                assert!(!is_plain_file_name(name), "{name:?}");
                let files = [ExpectedFile {
                    name,
                    decompressed_sha256: [0; 32],
                }];
                let dir = std::env::temp_dir().join("lernmi-unit-never-created");
                let result = download_files(&dir, &[], &files, &mut |_| {});
                assert!(matches!(result, Err(Error::BadFile { .. })), "{name:?}");
                assert!(!dir.exists());
            }
            assert!(is_plain_file_name("train-images-idx3-ubyte.gz"));
            assert!(is_plain_file_name(".hidden"));
        }

        #[test]
        fn urls_join_with_one_slash() {
            assert_eq!(join_url("http://a/b/", "f.gz"), "http://a/b/f.gz");
            assert_eq!(join_url("http://a/b", "f.gz"), "http://a/b/f.gz");
            assert!(MIRRORS
                .iter()
                .all(|m| m.starts_with("http://") && m.ends_with('/')));
        }

        #[test]
        fn digest_is_of_the_decompressed_contents() {
            let data = b"some idx bytes, any bytes".repeat(100);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&data).unwrap();
            let gz = gz.finish().unwrap();
            let want: [u8; 32] = Sha256::digest(&data).into();
            let plain = decompressed_sha256(&mut &data[..]).unwrap().unwrap();
            let packed = decompressed_sha256(&mut &gz[..]).unwrap().unwrap();
            assert_eq!(plain, want);
            assert_eq!(packed, want);
            // A cut gzip stream is reported as unusable contents, not as an I/O failure.
            let cut = decompressed_sha256(&mut &gz[..gz.len() / 2]).unwrap();
            assert!(cut.is_err(), "{cut:?}");
            // Empty and one-byte inputs are plain data.
            assert_eq!(
                decompressed_sha256(&mut &b""[..]).unwrap().unwrap(),
                <[u8; 32]>::from(Sha256::digest(b""))
            );
            assert_eq!(
                decompressed_sha256(&mut &[0x1fu8][..]).unwrap().unwrap(),
                <[u8; 32]>::from(Sha256::digest([0x1f]))
            );
        }

        #[test]
        fn temp_names_left_by_an_interrupted_run_are_skipped() {
            let dir =
                std::env::temp_dir().join(format!("lernmi-unit-stale-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let next = TEMP_COUNTER.load(Ordering::Relaxed);
            let stale: Vec<PathBuf> = (next..next + 3)
                .map(|n| dir.join(format!(".s.gz.partial-{}-{n}", std::process::id())))
                .collect();
            for path in &stale {
                std::fs::write(path, b"stale").unwrap();
            }
            let temp = TempFile::create(&dir, "s.gz").unwrap();
            assert!(!stale.contains(&temp.path));
            drop(temp);
            for path in &stale {
                assert_eq!(std::fs::read(path).unwrap(), b"stale");
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }

        #[test]
        fn temp_file_is_removed_unless_persisted() {
            let dir = std::env::temp_dir().join(format!("lernmi-unit-temp-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = {
                let temp = TempFile::create(&dir, "x.gz").unwrap();
                assert!(temp.path.is_file());
                temp.path.clone()
            };
            assert!(!path.exists());
            let mut temp = TempFile::create(&dir, "x.gz").unwrap();
            temp.file().unwrap().0.write_all(b"kept").unwrap();
            temp.persist(&dir.join("x.gz")).unwrap();
            assert_eq!(std::fs::read(dir.join("x.gz")).unwrap(), b"kept");
            let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
            assert_eq!(left.len(), 1);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_dir_comes_first_and_data_mnist_before_the_cache() {
        let explicit = Path::new("/somewhere/explicit");
        let path = search_path(Some(explicit));
        assert_eq!(path[0], explicit);
        let local = path
            .iter()
            .position(|p| p == &Path::new("data").join("mnist"))
            .unwrap();
        if let Some(cache) = cache_dir() {
            assert_eq!(path.last(), Some(&cache));
            assert!(local < path.len() - 1);
        }
        assert_eq!(search_path(None).len(), path.len() - 1);
    }

    #[test]
    fn cache_dir_ends_in_lernmi_mnist() {
        if let Some(dir) = cache_dir() {
            assert!(dir.ends_with(Path::new("lernmi").join("mnist")));
        }
    }

    #[test]
    fn has_mnist_accepts_gz_or_plain_and_needs_all_four() {
        let dir = std::env::temp_dir().join(format!("lernmi-unit-has-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!has_mnist(&dir));
        for (i, name) in MNIST_FILES.iter().enumerate() {
            let file = if i % 2 == 0 {
                format!("{name}.gz")
            } else {
                name.to_string()
            };
            assert!(!has_mnist(&dir));
            std::fs::write(dir.join(file), b"x").unwrap();
        }
        assert!(has_mnist(&dir));
        assert_eq!(locate_mnist(Some(&dir)), Some(dir.clone()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
