//! File plumbing shared by the file stores: reading, the symlink policy, atomic private writes.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::StoreError;

pub(super) fn io_err(path: &Path, action: &'static str, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// The file's bytes, or `None` if it does not exist. Follows symlinks.
pub(super) fn read_existing(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    match fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return Err(StoreError::NotAFile {
                path: path.to_path_buf(),
            })
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, "inspect", e)),
    }
    match fs::read(path) {
        Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, "read", e)),
    }
}

/// Refuses targets the file stores will not replace or remove (see the module docs of
/// [`crate::store`]): a symbolic link ([`StoreError::Symlink`]) or a non-regular file
/// ([`StoreError::NotAFile`]). A missing file is fine. Reads metadata only; writes nothing.
///
/// Errors: those two, or [`StoreError::Io`] when the path cannot be inspected.
pub fn check_replaceable(path: &Path) -> Result<(), StoreError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(StoreError::Symlink {
            path: path.to_path_buf(),
            target: fs::read_link(path).unwrap_or_else(|_| PathBuf::from("?")),
        }),
        Ok(m) if !m.is_file() => Err(StoreError::NotAFile {
            path: path.to_path_buf(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, "inspect", e)),
    }
}

/// Reads the file for a read-modify-write: applies [`check_replaceable`] first.
pub(super) fn read_for_update(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    check_replaceable(path)?;
    read_existing(path)
}

/// Checks that [`write_atomic`] could replace `path`, writing nothing that stays: the target
/// passes [`check_replaceable`], no file or dangling symlink stands where a directory must be
/// created, and a file can be created and deleted in the directory, or in its nearest
/// existing ancestor when the directory does not exist yet (a read-only mount, a directory
/// owned by someone else, an append-only or immutable directory).
///
/// What it cannot see without writing the target itself: an immutable or bind-mounted target
/// file, or a file owned by another user in a sticky directory. There the write still fails
/// after signing in, and the key is handed out instead.
pub(super) fn preflight_write(path: &Path) -> Result<(), StoreError> {
    let dir = nearest_existing_dir(parent_dir(path))?;
    check_replaceable(path)?;
    probe(dir)
}

/// The first of `dir` and its ancestors that exists (`.` when a relative path runs out).
/// Errors: a regular file or a dangling symbolic link where a directory must be created.
fn nearest_existing_dir(mut dir: &Path) -> Result<&Path, StoreError> {
    loop {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => return Ok(dir),
            Ok(_) => {
                return Err(io_err(
                    dir,
                    "create directory",
                    io::Error::new(io::ErrorKind::NotADirectory, "a file is in the way"),
                ))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
                    return Err(io_err(
                        dir,
                        "create directory",
                        io::Error::new(
                            io::ErrorKind::NotFound,
                            "a symbolic link to a missing directory is in the way",
                        ),
                    ));
                }
                dir = match dir.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    Some(_) => Path::new("."),
                    None => return Ok(dir), // the root: let the probe report it
                };
            }
            Err(e) => return Err(io_err(dir, "inspect", e)),
        }
    }
}

/// Creates an empty file in `dir` and deletes it. A file that cannot be deleted (an
/// append-only directory) is a refusal too: the write would leave its temporary file behind.
fn probe(dir: &Path) -> Result<(), StoreError> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..16u32 {
        let name = format!(
            ".openrouter-auth-probe.{}.{:x}",
            std::process::id(),
            stamp.wrapping_add(attempt)
        );
        let file = dir.join(name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&file)
        {
            Ok(f) => {
                drop(f);
                return fs::remove_file(&file).map_err(|e| io_err(&file, "delete a probe file", e));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(dir, "create a file in", e)),
        }
    }
    Err(io_err(
        dir,
        "create a file in",
        io::Error::new(io::ErrorKind::AlreadyExists, "every probe name was taken"),
    ))
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates the missing ancestors of `dir` with mode 0700 (unix); existing ones are not touched.
fn create_private_dirs(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| io_err(dir, "create directory", e))
}

/// Atomically replaces `path` with `contents`: temporary file in the same directory, mode 0600
/// before writing (unix), write, fsync, rename over the target, fsync the directory (unix,
/// best effort: the rename has already happened, so a failure there is only logged).
///
/// Returns the unix mode bits of the resulting file (`None` elsewhere).
/// The caller must have applied [`check_replaceable`].
pub(super) fn write_atomic(path: &Path, contents: &[u8]) -> Result<Option<u32>, StoreError> {
    let dir = parent_dir(path);
    create_private_dirs(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io_err(dir, "create a temporary file in", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| io_err(tmp.path(), "set permissions on", e))?;
    }
    tmp.as_file_mut()
        .write_all(contents)
        .map_err(|e| io_err(path, "write temporary file for", e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| io_err(path, "flush temporary file for", e))?;
    if let Err(e) = tmp.persist(path) {
        let temp = e.file.path().to_path_buf();
        return Err(match e.file.close() {
            Ok(()) => io_err(path, "rename temporary file over", e.error),
            // The key is still on disk: say where, so the user can delete it.
            Err(_) => StoreError::TempLeft {
                path: path.to_path_buf(),
                temp,
                source: e.error,
            },
        });
    }
    sync_dir(dir);
    tracing::debug!(path = %path.display(), "wrote key file");
    file_mode(path)
}

/// Deletes `path` (used when our own credentials file becomes empty).
pub(super) fn remove_file(path: &Path) -> Result<(), StoreError> {
    fs::remove_file(path).map_err(|e| io_err(path, "delete", e))?;
    sync_dir(parent_dir(path));
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) {
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not fsync directory");
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}

#[cfg(unix)]
fn file_mode(path: &Path) -> Result<Option<u32>, StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|e| io_err(path, "inspect", e))?;
    Ok(Some(meta.permissions().mode() & 0o7777))
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> Result<Option<u32>, StoreError> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    #[test]
    fn new_file_is_0600_and_created_dirs_are_0700_existing_dirs_untouched() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new().unwrap();
        let home = dir.path().join("home");
        fs::create_dir(&home).unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
        let target = home.join("a/b/secret");
        assert_eq!(write_atomic(&target, b"x").unwrap(), Some(0o600));
        assert_eq!(mode(&target), 0o600);
        assert_eq!(mode(&home.join("a")), 0o700);
        assert_eq!(mode(&home.join("a/b")), 0o700);
        assert_eq!(mode(&home), 0o755);
        assert_eq!(fs::read(&target).unwrap(), b"x");
        // no temporary files left behind
        assert_eq!(fs::read_dir(home.join("a/b")).unwrap().count(), 1);
    }

    #[test]
    fn preflight_accepts_what_write_atomic_can_do_and_leaves_nothing() {
        let dir = TempDir::new().unwrap();
        // Missing directories: fine, and none is created by the check.
        let deep = dir.path().join("a/b/secret");
        preflight_write(&deep).unwrap();
        assert!(!dir.path().join("a").exists());
        // An existing file in an existing directory: fine, and the probe file is gone.
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        preflight_write(&file).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"]);
        assert!(write_atomic(&deep, b"y").is_ok());
    }

    #[test]
    fn preflight_walks_up_relative_paths_to_the_current_directory() {
        let missing = Path::new("openrouter-auth-test-missing-dir/creds.json");
        assert_eq!(
            nearest_existing_dir(parent_dir(missing)).unwrap(),
            Path::new(".")
        );
        assert_eq!(
            nearest_existing_dir(parent_dir(Path::new("creds.json"))).unwrap(),
            Path::new(".")
        );
    }

    #[test]
    fn preflight_refuses_what_write_atomic_would_refuse() {
        let dir = TempDir::new().unwrap();
        let blocker = dir.path().join("not-a-dir");
        fs::write(&blocker, b"").unwrap();
        let through_file = blocker.join("sub/secret");
        let err = preflight_write(&through_file).unwrap_err();
        assert!(
            write_atomic(&through_file, b"k").is_err(),
            "the write agrees"
        );
        let msg = err.to_string();
        assert!(msg.contains(&blocker.display().to_string()), "{msg}");
        assert!(msg.contains("a file is in the way"), "{msg}");
        let a_dir = dir.path().join("d");
        fs::create_dir(&a_dir).unwrap();
        assert!(matches!(
            preflight_write(&a_dir),
            Err(StoreError::NotAFile { .. })
        ));
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&blocker, &link).unwrap();
            assert!(matches!(
                preflight_write(&link),
                Err(StoreError::Symlink { .. })
            ));
            // A dangling link where the store's directory would be created.
            let dangling = dir.path().join("dangling");
            std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
            let target = dangling.join("creds.json");
            let msg = preflight_write(&target).unwrap_err().to_string();
            assert!(
                msg.contains("symbolic link to a missing directory"),
                "{msg}"
            );
            assert!(write_atomic(&target, b"k").is_err(), "the write agrees");
        }
    }

    #[cfg(unix)]
    #[test]
    fn previously_0644_file_becomes_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new().unwrap();
        let target = dir.path().join("f");
        fs::write(&target, b"old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(write_atomic(&target, b"new").unwrap(), Some(0o600));
        assert_eq!(mode(&target), 0o600);
        assert_eq!(fs::read(&target).unwrap(), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused_and_left_alone() {
        let dir = TempDir::new().unwrap();
        let real = dir.path().join("real");
        fs::write(&real, b"data").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = read_for_update(&link).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::Symlink { .. }), "{msg}");
        assert!(msg.contains(&link.display().to_string()), "{msg}");
        assert!(msg.contains(&real.display().to_string()), "{msg}");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        // reading follows the link
        assert_eq!(read_existing(&link).unwrap().unwrap().as_slice(), b"data");
    }

    #[test]
    fn directories_are_not_files() {
        let dir = TempDir::new().unwrap();
        assert!(matches!(
            read_for_update(dir.path()),
            Err(StoreError::NotAFile { .. })
        ));
        assert!(matches!(
            read_existing(dir.path()),
            Err(StoreError::NotAFile { .. })
        ));
        assert!(read_existing(&dir.path().join("missing"))
            .unwrap()
            .is_none());
    }

    #[cfg(unix)]
    #[test]
    fn unwritable_directory_error_names_the_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new().unwrap();
        let ro = dir.path().join("ro");
        fs::create_dir(&ro).unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o500)).unwrap();
        let target = ro.join("f");
        let res = write_atomic(&target, b"x");
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o700)).unwrap();
        // root can write anywhere; only assert when the OS refused
        if let Err(e) = res {
            let msg = e.to_string();
            assert!(msg.contains(&ro.display().to_string()), "{msg}");
            assert!(msg.contains("PermissionDenied"), "{msg}");
        }
    }
}
