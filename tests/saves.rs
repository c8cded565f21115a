//! Saves and loads under adverse conditions: stale temporary files, permissions, directories
//! that cannot be synced, and files too large to read.

use std::path::{Path, PathBuf};

use lernmi::io::checkpoint::Checkpoint;
use lernmi::{Error, Network};

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lernmi-saves-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn network(seed: u64) -> Network {
    Network::<f32>::builder(&[4, 3, 2])
        .seed(seed)
        .build()
        .unwrap()
}

#[test]
fn stale_temporary_files_from_a_crashed_save_do_not_block_later_saves() {
    let dir = scratch("stale");
    let path = dir.join("model.safetensors");
    // What a save killed before its rename leaves behind, under every name a process with
    // this pid would try first (in a container every run has the same pid).
    let pid = std::process::id();
    for k in 0..256 {
        std::fs::write(
            dir.join(format!(".model.safetensors.{pid}-{k}.tmp")),
            b"stale",
        )
        .unwrap();
    }
    let net = network(1);
    net.save(&path).unwrap();
    assert_eq!(Network::<f32>::load(&path).unwrap(), net);
    // Only the save's own temporary file is gone; the stale ones belong to no one we know.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 257);
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(unix)]
#[test]
fn a_save_keeps_the_permissions_of_the_file_it_replaces() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("mode");
    // Two modes, so that no umask can give both by chance.
    for mode in [0o640, 0o604] {
        let path = dir.join(format!("model-{mode:o}.safetensors"));
        network(1).save(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        network(2).save(&path).unwrap();
        let kept = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(kept, mode, "mode {kept:o} after replacing a {mode:o} file");
        assert_eq!(Network::<f32>::load(&path).unwrap(), network(2));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Drops, for the calling thread only, the capabilities that let root ignore permissions
/// (CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH), so the test means the same as root or not.
#[cfg(target_os = "linux")]
fn drop_permission_overrides() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const OVERRIDES: u32 = (1 << 1) | (1 << 2);
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget and capset read and write a header and two data structs of these layouts
    // (capability version 3), which live until the calls return.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        data[0].effective &= !OVERRIDES;
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
            0
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_directory_that_cannot_be_synced_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("dirsync");
    let path = dir.join("model.safetensors");
    network(1).save(&path).unwrap();
    let set_mode = |mode| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode));
    // Writable and searchable but not readable: files can be created and renamed in it, but
    // it cannot be opened to sync it.
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            drop_permission_overrides();
            set_mode(0o300).unwrap();
            let opens = std::fs::File::open(&dir).is_ok();
            let result = network(2).save(&path);
            set_mode(0o700).unwrap();
            assert!(!opens, "the test needs a directory this thread cannot open");
            result
        })
        .join()
        .unwrap()
    });
    let err = result.unwrap_err();
    match &err {
        Error::Io { path: named, .. } => assert_eq!(named, &dir, "{err}"),
        other => panic!("expected an I/O error naming the directory, got {other}"),
    }
    // The rename happened; only its durability is in doubt.
    assert_eq!(Network::<f32>::load(&path).unwrap(), network(2));
    std::fs::remove_dir_all(&dir).ok();
}

/// A file of `len` bytes that takes no space on disk.
fn sparse(dir: &Path, name: &str, len: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().set_len(len).unwrap();
    path
}

fn expect_too_large(err: Error, path: &Path) {
    match &err {
        Error::BadFile {
            path: named,
            problem,
        } => {
            assert_eq!(named, path, "{err}");
            assert!(problem.contains("limit"), "{err}");
        }
        other => panic!("expected a BadFile error about the size limit, got {other}"),
    }
}

#[test]
fn loads_refuse_a_huge_file_without_reading_it() {
    let dir = scratch("huge");
    let path = sparse(&dir, "huge.safetensors", 64 << 30);
    expect_too_large(Network::<f32>::load(&path).unwrap_err(), &path);
    expect_too_large(Checkpoint::<f32>::load(&path).unwrap_err(), &path);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_limit_is_adjustable_and_exact() {
    let dir = scratch("limit");
    let path = dir.join("model.safetensors");
    let net = network(1);
    net.save(&path).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(Network::<f32>::load_with_limit(&path, len).unwrap(), net);
    expect_too_large(
        Network::<f32>::load_with_limit(&path, len - 1).unwrap_err(),
        &path,
    );
    // The same for checkpoints.
    let trainer = lernmi::Trainer::new(net.clone(), lernmi::TrainConfig::default()).unwrap();
    trainer.save_checkpoint(&path).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        Checkpoint::<f32>::load_with_limit(&path, len)
            .unwrap()
            .network,
        net
    );
    expect_too_large(
        Checkpoint::<f32>::load_with_limit(&path, len - 1).unwrap_err(),
        &path,
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A file whose length says nothing about what it holds: reading stops at the limit.
#[cfg(unix)]
#[test]
fn a_file_without_a_length_is_read_only_up_to_the_limit() {
    let endless = Path::new("/dev/zero");
    expect_too_large(
        Network::<f32>::load_with_limit(endless, 1 << 20).unwrap_err(),
        endless,
    );
    expect_too_large(
        Checkpoint::<f32>::load_with_limit(endless, 1 << 20).unwrap_err(),
        endless,
    );
}
