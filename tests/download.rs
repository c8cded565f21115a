//! Downloading against a loopback HTTP/1.1 server started by each test: good files land and
//! read back, corrupt, truncated and oversized bodies fail without leaving anything behind,
//! failed mirrors fall through to the next one; and finding MNIST in an explicit directory.
//! Nothing here reaches the internet.

#![cfg(feature = "download")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;
use lernmi::data::download::{
    download_files, download_published, has_mnist, locate_mnist, search_path, DownloadEvent,
    ExpectedFile, PublishedFile,
};
use lernmi::data::idx::read_idx;
use lernmi::data::MNIST_FILES;
use lernmi::Error;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// A canned HTTP server.

/// What the server answers for a path.
#[derive(Clone)]
enum Reply {
    /// 200 with this body and its true length.
    Body(Vec<u8>),
    /// 200 announcing `announced` bytes, sending `body`, then closing the connection.
    Truncated { announced: usize, body: Vec<u8> },
}

/// A server on 127.0.0.1 answering at most a given number of requests; unknown paths get 404.
struct Server {
    port: u16,
    /// The paths requested, in order.
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(routes: &[(&str, Reply)], max_requests: usize) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let routes: HashMap<String, Reply> = routes
            .iter()
            .map(|(path, reply)| (path.to_string(), reply.clone()))
            .collect();
        let log = Arc::new(Mutex::new(Vec::new()));
        let thread_log = Arc::clone(&log);
        // Detached: it stops after `max_requests` or 30 s, whichever comes first.
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut served = 0;
            while served < max_requests && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        served += 1;
                        let _ = answer(stream, &routes, &thread_log);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => break,
                }
            }
        });
        Server { port, log }
    }

    fn base(&self, prefix: &str) -> String {
        format!("http://127.0.0.1:{}/{prefix}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// Reads one request's head and writes the canned reply, then closes the connection.
fn answer(
    stream: TcpStream,
    routes: &HashMap<String, Reply>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    log.lock().unwrap().push(path.clone());
    let (status, announced, body) = match routes.get(&path) {
        Some(Reply::Body(body)) => ("200 OK", body.len(), body.clone()),
        Some(Reply::Truncated { announced, body }) => ("200 OK", *announced, body.clone()),
        None => ("404 Not Found", 9, b"not found".to_vec()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: {announced}\r\n\
         Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    )?;
    stream.write_all(&body)?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// A base URL on which nothing listens: connecting is refused.
fn refused_base() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/")
}

// ---------------------------------------------------------------------------------------------
// Test data and directories.

/// A small IDX file of `count` images, `rows` × `cols`, pixels from `seed`.
fn idx_images(count: u32, rows: u32, cols: u32, seed: u8) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, 3];
    for d in [count, rows, cols] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    let n = (count * rows * cols) as usize;
    v.extend((0..n).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed)));
    v
}

/// A small IDX label file.
fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, 1];
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh directory under the system temp dir, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new(test: &str) -> TestDir {
        let path =
            std::env::temp_dir().join(format!("lernmi-download-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TestDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// The names in the directory, sorted (temporary files included).
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A progress event, owned, to be collected and inspected.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Started {
        file: String,
        url: String,
        total: Option<u64>,
    },
    Progress {
        file: String,
        bytes: u64,
        total: Option<u64>,
    },
    Finished {
        file: String,
    },
    MirrorFailed {
        file: String,
        url: String,
        error: String,
    },
}

/// Runs `download_files`, collecting its events.
fn download(
    dir: &Path,
    mirrors: &[&str],
    files: &[ExpectedFile<'_>],
) -> (lernmi::Result<()>, Vec<Seen>) {
    let mut seen = Vec::new();
    let result = download_files(dir, mirrors, files, &mut |event: &DownloadEvent<'_>| {
        seen.push(match event {
            DownloadEvent::Started {
                file,
                url,
                total_bytes,
            } => Seen::Started {
                file: file.to_string(),
                url: url.to_string(),
                total: *total_bytes,
            },
            DownloadEvent::Progress {
                file,
                bytes,
                total_bytes,
            } => Seen::Progress {
                file: file.to_string(),
                bytes: *bytes,
                total: *total_bytes,
            },
            DownloadEvent::Finished { file } => Seen::Finished {
                file: file.to_string(),
            },
            DownloadEvent::MirrorFailed { file, url, error } => Seen::MirrorFailed {
                file: file.to_string(),
                url: url.to_string(),
                error: error.clone(),
            },
        });
    });
    (result, seen)
}

const IMAGES: &str = "imgs-idx3-ubyte.gz";
const LABELS: &str = "labs-idx1-ubyte.gz";

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn good_download_lands_files_that_read_back_and_a_second_run_fetches_nothing() {
    let dir = TestDir::new("good");
    let images = idx_images(3, 4, 5, 11);
    let labels = idx_labels(&[7, 0, 3]);
    let (images_gz, labels_gz) = (gzip(&images), gzip(&labels));
    let server = Server::start(
        &[
            (&format!("/m/{IMAGES}"), Reply::Body(images_gz.clone())),
            (&format!("/m/{LABELS}"), Reply::Body(labels_gz.clone())),
        ],
        2,
    );
    let base = server.base("m/");
    let files = [
        ExpectedFile {
            name: IMAGES,
            decompressed_sha256: sha256(&images),
        },
        ExpectedFile {
            name: LABELS,
            decompressed_sha256: sha256(&labels),
        },
    ];

    let (result, seen) = download(dir.path(), &[&base], &files);
    result.unwrap();
    assert_eq!(dir.entries(), vec![IMAGES.to_string(), LABELS.to_string()]);
    assert_eq!(std::fs::read(dir.path().join(IMAGES)).unwrap(), images_gz);
    let read = read_idx(dir.path().join(IMAGES)).unwrap();
    assert_eq!(read.dims, vec![3, 4, 5]);
    assert_eq!(read.data, images[16..]);
    let read = read_idx(dir.path().join(LABELS)).unwrap();
    assert_eq!(read.dims, vec![3]);
    assert_eq!(read.data, vec![7, 0, 3]);
    assert_eq!(
        server.requests(),
        vec![format!("/m/{IMAGES}"), format!("/m/{LABELS}")]
    );

    // Events: Started with the announced length, Progress ending at it, Finished; per file.
    for (name, gz) in [(IMAGES, &images_gz), (LABELS, &labels_gz)] {
        let mine: Vec<&Seen> = seen
            .iter()
            .filter(|s| match s {
                Seen::Started { file, .. }
                | Seen::Progress { file, .. }
                | Seen::Finished { file }
                | Seen::MirrorFailed { file, .. } => file == name,
            })
            .collect();
        let total = Some(gz.len() as u64);
        assert_eq!(
            mine.first(),
            Some(&&Seen::Started {
                file: name.into(),
                url: format!("{base}{name}"),
                total
            })
        );
        assert_eq!(mine.last(), Some(&&Seen::Finished { file: name.into() }));
        assert_eq!(
            mine[mine.len() - 2],
            &Seen::Progress {
                file: name.into(),
                bytes: gz.len() as u64,
                total
            }
        );
    }

    // Both files are present and verify: nothing is fetched, even with no mirror reachable.
    let (result, seen) = download(dir.path(), &[&refused_base()], &files);
    result.unwrap();
    assert_eq!(
        seen,
        vec![
            Seen::Finished {
                file: IMAGES.into()
            },
            Seen::Finished {
                file: LABELS.into()
            }
        ]
    );
    assert_eq!(std::fs::read(dir.path().join(IMAGES)).unwrap(), images_gz);
}

#[test]
fn corrupt_contents_fail_the_checksum_and_keep_the_previous_file() {
    let dir = TestDir::new("corrupt");
    let good = idx_images(2, 3, 3, 1);
    let mut altered = good.clone();
    *altered.last_mut().unwrap() ^= 0xff;
    let altered_gz = gzip(&altered);
    let good_gz = gzip(&good);
    // `altered_gz` is a valid gzip stream served with its true length: only the digest differs.
    // Bytes flipped inside the compressed data, same length: not a valid stream any more.
    let mut flipped_gz = good_gz.clone();
    let middle = flipped_gz.len() / 2;
    for b in &mut flipped_gz[middle - 2..middle + 2] {
        *b ^= 0x5a;
    }
    let previous = b"previous contents, not verified".to_vec();
    std::fs::write(dir.path().join(IMAGES), &previous).unwrap();
    let server = Server::start(
        &[
            (&format!("/a/{IMAGES}"), Reply::Body(altered_gz)),
            (&format!("/f/{IMAGES}"), Reply::Body(flipped_gz)),
        ],
        2,
    );
    let files = [ExpectedFile {
        name: IMAGES,
        decompressed_sha256: sha256(&good),
    }];

    let url = format!("{}{IMAGES}", server.base("a/"));
    let (result, seen) = download(dir.path(), &[&server.base("a/")], &files);
    let err = result.unwrap_err();
    let message = err.to_string();
    match err {
        Error::Download { file, tried } => {
            assert_eq!(file, IMAGES);
            assert_eq!(tried.len(), 1);
            match &tried[0] {
                Error::Checksum {
                    url: u,
                    expected,
                    actual,
                } => {
                    assert_eq!(u, &url);
                    assert_eq!(expected, &hex(&sha256(&good)));
                    assert_eq!(actual, &hex(&sha256(&altered)));
                }
                other => panic!("expected a checksum error, got {other:?}"),
            }
        }
        other => panic!("expected a download error, got {other:?}"),
    }
    assert!(message.contains(IMAGES), "{message}");
    assert!(message.contains(&hex(&sha256(&good))), "{message}");
    assert!(message.contains(&hex(&sha256(&altered))), "{message}");
    assert!(seen
        .iter()
        .any(|s| matches!(s, Seen::MirrorFailed { url: u, .. } if *u == url)));
    assert_eq!(dir.entries(), vec![IMAGES.to_string()]);
    assert_eq!(std::fs::read(dir.path().join(IMAGES)).unwrap(), previous);

    // A stream that does not decompress fails too, and also leaves everything as it was.
    let (result, _) = download(dir.path(), &[&server.base("f/")], &files);
    match result.unwrap_err() {
        Error::Download { tried, .. } => {
            assert!(
                matches!(tried[..], [Error::Fetch { .. } | Error::Checksum { .. }]),
                "{tried:?}"
            )
        }
        other => panic!("expected a download error, got {other:?}"),
    }
    assert_eq!(dir.entries(), vec![IMAGES.to_string()]);
    assert_eq!(std::fs::read(dir.path().join(IMAGES)).unwrap(), previous);
}

#[test]
fn truncated_body_fails_cleanly() {
    let dir = TestDir::new("truncated");
    let data = idx_images(20, 10, 10, 3);
    let gz = gzip(&data);
    let half = gz[..gz.len() / 2].to_vec();
    let server = Server::start(
        &[(
            &format!("/t/{IMAGES}"),
            Reply::Truncated {
                announced: gz.len(),
                body: half,
            },
        )],
        1,
    );
    let files = [ExpectedFile {
        name: IMAGES,
        decompressed_sha256: sha256(&data),
    }];
    let url = format!("{}{IMAGES}", server.base("t/"));

    let (result, seen) = download(dir.path(), &[&server.base("t/")], &files);
    match result.unwrap_err() {
        Error::Download { file, tried } => {
            assert_eq!(file, IMAGES);
            assert!(
                matches!(&tried[..], [Error::Fetch { url: u, .. }] if *u == url),
                "{tried:?}"
            );
        }
        other => panic!("expected a download error, got {other:?}"),
    }
    assert!(
        matches!(seen.last(), Some(Seen::MirrorFailed { .. })),
        "{seen:?}"
    );
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
}

#[test]
fn oversized_announcement_is_refused_before_reading() {
    let dir = TestDir::new("oversized");
    let server = Server::start(
        &[(
            &format!("/o/{IMAGES}"),
            Reply::Truncated {
                announced: 1 << 30,
                body: vec![0; 100],
            },
        )],
        1,
    );
    let files = [ExpectedFile {
        name: IMAGES,
        decompressed_sha256: [0; 32],
    }];
    let (result, seen) = download(dir.path(), &[&server.base("o/")], &files);
    let message = result.unwrap_err().to_string();
    assert!(message.contains("1073741824"), "{message}");
    assert!(
        !seen.iter().any(|s| matches!(s, Seen::Started { .. })),
        "{seen:?}"
    );
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
}

#[test]
fn failed_mirrors_fall_through_to_the_next() {
    let dir = TestDir::new("fallback");
    let data = idx_labels(&[1, 2, 3, 4]);
    let gz = gzip(&data);
    // "/missing/..." is not routed: 404.
    let server = Server::start(&[(&format!("/good/{LABELS}"), Reply::Body(gz.clone()))], 2);
    let refused = refused_base();
    let (missing, good) = (server.base("missing/"), server.base("good/"));
    let files = [ExpectedFile {
        name: LABELS,
        decompressed_sha256: sha256(&data),
    }];

    let (result, seen) = download(dir.path(), &[&refused, &missing, &good], &files);
    result.unwrap();
    assert_eq!(std::fs::read(dir.path().join(LABELS)).unwrap(), gz);
    assert_eq!(dir.entries(), vec![LABELS.to_string()]);
    let failed: Vec<&str> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::MirrorFailed { url, .. } => Some(url.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![format!("{refused}{LABELS}"), format!("{missing}{LABELS}")]
    );
    assert!(seen
        .iter()
        .any(|s| matches!(s, Seen::MirrorFailed { error, .. } if error.contains("404"))));
    assert!(seen.contains(&Seen::Started {
        file: LABELS.into(),
        url: format!("{good}{LABELS}"),
        total: Some(gz.len() as u64)
    }));
    assert_eq!(
        seen.last(),
        Some(&Seen::Finished {
            file: LABELS.into()
        })
    );
    assert_eq!(
        server.requests(),
        vec![format!("/missing/{LABELS}"), format!("/good/{LABELS}")]
    );
}

#[test]
fn when_every_mirror_fails_the_error_names_each() {
    let dir = TestDir::new("allfail");
    let server = Server::start(&[], 1);
    let refused = refused_base();
    let missing = server.base("missing/");
    let files = [ExpectedFile {
        name: LABELS,
        decompressed_sha256: [0; 32],
    }];

    let (result, _) = download(dir.path(), &[&refused, &missing], &files);
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, Error::Download { tried, .. } if tried.len() == 2),
        "{err:?}"
    );
    assert!(message.contains(LABELS), "{message}");
    assert!(message.contains(&format!("{refused}{LABELS}")), "{message}");
    assert!(message.contains(&format!("{missing}{LABELS}")), "{message}");
    assert!(message.contains("404"), "{message}");
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());

    let (result, _) = download(dir.path(), &[], &files);
    assert!(matches!(result, Err(Error::Download { ref tried, .. }) if tried.is_empty()));
}

#[test]
fn a_bad_existing_file_is_replaced_and_a_good_plain_file_is_kept() {
    let dir = TestDir::new("replace");
    let data = idx_labels(&[5, 6]);
    let gz = gzip(&data);
    std::fs::write(dir.path().join(LABELS), b"stale").unwrap();
    let server = Server::start(&[(&format!("/r/{LABELS}"), Reply::Body(gz.clone()))], 1);
    let files = [ExpectedFile {
        name: LABELS,
        decompressed_sha256: sha256(&data),
    }];
    let (result, _) = download(dir.path(), &[&server.base("r/")], &files);
    result.unwrap();
    assert_eq!(std::fs::read(dir.path().join(LABELS)).unwrap(), gz);
    assert_eq!(dir.entries(), vec![LABELS.to_string()]);

    // A verified, uncompressed `NAME` stands for `NAME.gz`: nothing fetched, nothing added.
    let plain = TestDir::new("plain");
    let stem = LABELS.strip_suffix(".gz").unwrap();
    std::fs::write(plain.path().join(stem), &data).unwrap();
    let (result, seen) = download(plain.path(), &[&refused_base()], &files);
    result.unwrap();
    assert_eq!(
        seen,
        vec![Seen::Finished {
            file: LABELS.into()
        }]
    );
    assert_eq!(plain.entries(), vec![stem.to_string()]);
}

#[test]
fn locate_mnist_finds_an_explicit_directory_that_holds_the_files() {
    let full = TestDir::new("locate-full");
    for (i, name) in MNIST_FILES.iter().enumerate() {
        let file = if i < 2 {
            format!("{name}.gz")
        } else {
            name.to_string()
        };
        std::fs::write(full.path().join(file), b"tiny").unwrap();
    }
    assert!(has_mnist(full.path()));
    assert_eq!(
        locate_mnist(Some(full.path())),
        Some(full.path().to_path_buf())
    );

    // An empty explicit directory is tried first and skipped; what is found then depends only
    // on the other candidates (LERNMI_DATA, data/mnist, the cache), which this test does not
    // change.
    let empty = TestDir::new("locate-empty");
    let path = search_path(Some(empty.path()));
    assert_eq!(path[0], empty.path());
    assert_eq!(&path[1..], &search_path(None)[..]);
    let found = locate_mnist(Some(empty.path()));
    assert_eq!(found, path[1..].iter().find(|d| has_mnist(d)).cloned());
    assert_ne!(found.as_deref(), Some(empty.path()));
    if !path[1..].iter().any(|d| has_mnist(d)) {
        assert_eq!(found, None);
    }
}

#[test]
fn published_sums_check_the_bytes_as_published() {
    let dir = TestDir::new("published");
    let contents = idx_images(2, 3, 3, 7);
    let published = gzip(&contents);
    let mut recompressed = GzEncoder::new(Vec::new(), Compression::best());
    recompressed.write_all(&contents).unwrap();
    let recompressed = recompressed.finish().unwrap();
    assert_ne!(recompressed, published);
    let server = Server::start(
        &[
            (&format!("/p/{IMAGES}"), Reply::Body(published.clone())),
            (&format!("/r/{IMAGES}"), Reply::Body(recompressed.clone())),
        ],
        3,
    );
    let files = [PublishedFile {
        name: IMAGES,
        sha256: sha256(&published),
    }];
    let fetch = |base: &str, dir: &Path| {
        let mut started = 0;
        let result = download_published(dir, &[base], &files, &mut |e| {
            started += usize::from(matches!(e, DownloadEvent::Started { .. }));
        });
        (result, started)
    };

    // The same contents compressed otherwise are not the published file.
    let err = fetch(&server.base("r/"), dir.path()).0.unwrap_err();
    let Error::Download { tried, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(&tried[..], [Error::Fetch { problem, .. }] if problem.contains("SHA-256 of the file")),
        "{tried:?}"
    );
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    // The decompressed contents beside it do not count as the published file either.
    std::fs::write(dir.path().join(IMAGES.trim_end_matches(".gz")), &contents).unwrap();

    let (result, started) = fetch(&server.base("p/"), dir.path());
    result.unwrap();
    assert_eq!(started, 1);
    assert_eq!(std::fs::read(dir.path().join(IMAGES)).unwrap(), published);
    // Present and verified: kept, not fetched again.
    let (result, started) = fetch(&server.base("p/"), dir.path());
    result.unwrap();
    assert_eq!(started, 0);
}
