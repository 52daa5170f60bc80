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

/// Refuses targets the file stores will not replace or remove (see [`KeyStore`](crate::KeyStore)): a symbolic link ([`StoreError::Symlink`]) or a non-regular file
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

/// A file holding a key that other users of the machine can read: its group or other read
/// bit is set (e.g. mode `0644`, as a file copied by hand or written by a program that does
/// not care ends up). What [`readable_by_others`] finds; `Display` says it in words.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadableByOthers {
    /// The file (as given; a symbolic link is followed to the mode of its target).
    pub path: PathBuf,
    /// Its permission bits, e.g. `0o644`.
    pub mode: u32,
}

impl ReadableByOthers {
    /// The fix, as the command a person runs: `chmod 600 PATH` (the path as it is; quote it
    /// for a shell). Storing a key again also leaves the file at `0600`.
    pub fn fix(&self) -> String {
        format!("chmod 600 {}", self.path.display())
    }
}

impl std::fmt::Display for ReadableByOthers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is readable by other users of this machine (mode {:04o})",
            self.path.display(),
            self.mode
        )
    }
}

/// Whether the key file `path` can be read by other users: `Some` when its group or other
/// read bit is set. A file that does not exist or cannot be inspected, and every file on a
/// platform without unix modes, gives `None`. Reads metadata only.
pub fn readable_by_others(path: &Path) -> Option<ReadableByOthers> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).ok()?.permissions().mode() & 0o7777;
        (mode & 0o044 != 0).then(|| ReadableByOthers {
            path: path.to_path_buf(),
            mode,
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Reads the file for a read-modify-write: applies [`check_replaceable`] first.
#[cfg(test)]
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

/// Replaces `path` with `contents` through [`update`] (lock, private temporary file, fsync,
/// rename only over what was read, directory fsync), whatever the file held.
///
/// Returns the unix mode bits of the resulting file (`None` elsewhere).
#[cfg(test)]
pub(super) fn write_atomic(path: &Path, contents: &[u8]) -> Result<Option<u32>, StoreError> {
    match update(path, |_| {
        Ok(Change::Write(Zeroizing::new(contents.to_vec())))
    })? {
        Updated::Wrote(mode) => Ok(mode),
        Updated::Deleted | Updated::Kept => unreachable!("the merge always writes"),
    }
}

/// Deletes `path` (used when our own credentials file becomes empty).
pub(super) fn remove_file(path: &Path) -> Result<(), StoreError> {
    fs::remove_file(path).map_err(|e| io_err(path, "delete", e))?;
    sync_dir(parent_dir(path));
    Ok(())
}

/// What a merge decided to do with the file it was shown.
pub(super) enum Change {
    /// Replace the file with these bytes.
    Write(Zeroizing<Vec<u8>>),
    /// Delete the file (our credentials file, once nothing is left in it).
    Delete,
    /// Leave the file as it is.
    Keep,
}

/// What [`update`] did.
pub(super) enum Updated {
    /// Wrote the file; its unix mode bits (`None` elsewhere).
    Wrote(Option<u32>),
    /// Deleted it.
    Deleted,
    /// Left it as it was.
    Kept,
}

/// How many times [`update`] merges again because another program changed the file between
/// our read and our rename, before giving up.
const MAX_MERGES: usize = 64;

/// How long [`update`] waits for another `openrouter-auth` holding the lock.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Read-merge-write of `path` that never drops another program's write:
///
/// 1. Our own writers serialise on an advisory lock ([`fd_lock`]: `flock` on unix,
///    `LockFileEx` on Windows) on `<file>.lock` beside the target, held across the whole
///    read-merge-write and deleted (on unix) before it is released.
/// 2. `merge` is shown the current bytes (`None`: no file) and says what to write.
/// 3. The new bytes go to a private temporary file (mode 0600, fsynced) in the same
///    directory, which then replaces the target only if the target is still what `merge` was
///    shown. Programs that do not take our lock (opencode, an editor, a script) may write in
///    between; then `merge` runs again on what they wrote (at most [`MAX_MERGES`] times).
///    On Linux the check and the rename are one step: `renameat2(RENAME_NOREPLACE)` when there
///    was no file, `renameat2(RENAME_EXCHANGE)` otherwise, after which the file swapped out is
///    compared with what was merged and, if another program had replaced it meanwhile, swapped
///    straight back. Elsewhere (or on a filesystem without `renameat2`) the target is read
///    again just before the rename, which leaves a window of one `rename` call.
///
/// A `merge` error (a file that does not parse) leaves the file untouched.
pub(super) fn update(
    path: &Path,
    mut merge: impl FnMut(Option<&[u8]>) -> Result<Change, StoreError>,
) -> Result<Updated, StoreError> {
    check_replaceable(path)?;
    // A missing file that stays missing (remove from a store never written): no directory,
    // no lock file.
    if read_existing(path)?.is_none() && matches!(merge(None)?, Change::Keep) {
        return Ok(Updated::Kept);
    }
    create_private_dirs(parent_dir(path))?;
    with_lock(path, || {
        check_replaceable(path)?;
        let mut seen = Snapshot::read(path)?;
        for _ in 0..MAX_MERGES {
            match merge(seen.bytes())? {
                Change::Keep => return Ok(Updated::Kept),
                Change::Delete => {
                    let now = Snapshot::read(path)?;
                    if now.bytes() != seen.bytes() {
                        seen = now;
                        continue;
                    }
                    if now.bytes().is_some() {
                        remove_file(path)?;
                    }
                    return Ok(Updated::Deleted);
                }
                Change::Write(bytes) => match replace_if_unchanged(path, &seen, &bytes)? {
                    Some(mode) => {
                        tracing::debug!(path = %path.display(), "wrote key file");
                        return Ok(Updated::Wrote(mode));
                    }
                    None => {
                        tracing::debug!(path = %path.display(), "another program wrote the file meanwhile; merging again");
                        seen = Snapshot::read(path)?;
                    }
                },
            }
        }
        Err(io_err(
            path,
            "write",
            io::Error::other(format!(
                "another program rewrote it {MAX_MERGES} times while this tool was writing it; nothing was written"
            )),
        ))
    })
}

/// The lock file beside `path`: `auth.json` → `auth.json.lock`.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Runs `f` holding the advisory lock of `path` (see [`update`]). On unix the lock file is
/// deleted while still locked; whoever was waiting on that file sees it is no longer the one
/// at the path and locks the new one instead, so every holder locks the same file.
fn with_lock<T>(path: &Path, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let lock_file = lock_path(path);
    let started = std::time::Instant::now();
    loop {
        let mut open = fs::OpenOptions::new();
        open.read(true).write(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            open.mode(0o600);
        }
        let file = open
            .open(&lock_file)
            .map_err(|e| io_err(&lock_file, "open the lock file", e))?;
        let mut lock = fd_lock::RwLock::new(file);
        let guard = loop {
            match lock.try_write() {
                Ok(guard) => break guard,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if started.elapsed() > LOCK_PATIENCE {
                        return Err(io_err(
                            &lock_file,
                            "lock",
                            io::Error::new(
                                io::ErrorKind::TimedOut,
                                "another openrouter-auth has held it for 10 s",
                            ),
                        ));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(&lock_file, "lock", e)),
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let locked = guard
                .metadata()
                .map_err(|e| io_err(&lock_file, "inspect", e))?;
            match fs::symlink_metadata(&lock_file) {
                Ok(m) if m.dev() == locked.dev() && m.ino() == locked.ino() => {}
                // Deleted (or replaced) by the holder before us: lock the current one.
                _ => continue,
            }
        }
        let result = f();
        #[cfg(unix)]
        if let Err(e) = fs::remove_file(&lock_file) {
            // An append-only directory: the lock file stays, which is harmless.
            tracing::debug!(path = %lock_file.display(), error = %e, "could not delete the lock file");
        }
        drop(guard);
        return result;
    }
}

/// A file's bytes as read, with the identity of the file they were read from.
struct Snapshot {
    bytes: Option<Zeroizing<Vec<u8>>>,
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    id: Option<FileId>,
}

/// Which file, and which version of it: device, inode, length, modification time.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: Option<std::time::SystemTime>,
}

impl FileId {
    #[cfg(unix)]
    fn of(m: &fs::Metadata) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        Some(FileId {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: m.modified().ok(),
        })
    }

    #[cfg(not(unix))]
    fn of(_m: &fs::Metadata) -> Option<FileId> {
        None
    }
}

impl Snapshot {
    /// Reads `path` through one open file, so bytes and identity belong together.
    fn read(path: &Path) -> Result<Snapshot, StoreError> {
        let mut file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Snapshot {
                    bytes: None,
                    id: None,
                })
            }
            Err(e) => return Err(io_err(path, "read", e)),
        };
        let meta = file.metadata().map_err(|e| io_err(path, "inspect", e))?;
        if !meta.is_file() {
            return Err(StoreError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
        read_all(&mut file, &mut bytes).map_err(|e| io_err(path, "read", e))?;
        Ok(Snapshot {
            bytes: Some(bytes),
            id: FileId::of(&meta),
        })
    }

    fn bytes(&self) -> Option<&[u8]> {
        self.bytes.as_deref().map(Vec::as_slice)
    }
}

/// `read_to_end` into a zeroized buffer, growing it by hand so no unzeroized copy of a
/// reallocated buffer is left behind.
fn read_all(file: &mut fs::File, out: &mut Zeroizing<Vec<u8>>) -> io::Result<()> {
    use std::io::Read;
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        let n = match file.read(&mut chunk[..]) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if out.len() + n > out.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity((out.len() + n) * 2));
            bigger.extend_from_slice(out);
            *out = bigger;
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// A private temporary file in `path`'s directory holding `contents`: mode 0600 before any
/// byte is written (unix), fsynced.
fn temp_with(path: &Path, contents: &[u8]) -> Result<tempfile::NamedTempFile, StoreError> {
    let dir = parent_dir(path);
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
            .map_err(|e| io_err(path, "set permissions on the temporary file for", e))?;
    }
    tmp.as_file_mut()
        .write_all(contents)
        .map_err(|e| io_err(path, "write temporary file for", e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| io_err(path, "flush temporary file for", e))?;
    Ok(tmp)
}

/// The rename of `tmp` over `path` failed with `error`: deletes `tmp`, or says it is left.
fn rename_failed(path: &Path, tmp: tempfile::NamedTempFile, error: io::Error) -> StoreError {
    let temp = tmp.path().to_path_buf();
    match tmp.close() {
        Ok(()) => io_err(path, "rename temporary file over", error),
        // The key is still on disk: say where, so the user can delete it.
        Err(_) => StoreError::TempLeft {
            path: path.to_path_buf(),
            temp,
            source: error,
        },
    }
}

/// Puts `contents` at `path` if `path` still holds what `seen` holds (see [`update`]).
/// `Ok(None)`: another program wrote `path` meanwhile; nothing of ours stayed there.
fn replace_if_unchanged(
    path: &Path,
    seen: &Snapshot,
    contents: &[u8],
) -> Result<Option<Option<u32>>, StoreError> {
    let tmp = temp_with(path, contents)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let tmp = match swap_in(path, seen, tmp)? {
        Swapped::Done => {
            sync_dir(parent_dir(path));
            return file_mode(path).map(Some);
        }
        Swapped::Changed => return Ok(None),
        Swapped::Unsupported(tmp) => tmp,
    };
    // Re-read just before the rename.
    let now = Snapshot::read(path)?;
    if now.bytes() != seen.bytes() {
        return Ok(None);
    }
    if let Err(e) = tmp.persist(path) {
        return Err(rename_failed(path, e.file, e.error));
    }
    sync_dir(parent_dir(path));
    file_mode(path).map(Some)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
enum Swapped {
    Done,
    Changed,
    Unsupported(tempfile::NamedTempFile),
}

/// The Linux compare-and-swap of [`replace_if_unchanged`].
#[cfg(any(target_os = "linux", target_os = "android"))]
fn swap_in(
    path: &Path,
    seen: &Snapshot,
    tmp: tempfile::NamedTempFile,
) -> Result<Swapped, StoreError> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    use rustix::io::Errno;
    let unsupported = |e: Errno| matches!(e, Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP);
    let Some(expected) = seen.bytes() else {
        // There was no file: create it only if there still is none.
        return match renameat_with(CWD, tmp.path(), CWD, path, RenameFlags::NOREPLACE) {
            Ok(()) => {
                disarm(tmp);
                Ok(Swapped::Done)
            }
            Err(Errno::EXIST) => Ok(Swapped::Changed),
            Err(e) if unsupported(e) => Ok(Swapped::Unsupported(tmp)),
            Err(e) => Err(rename_failed(path, tmp, e.into())),
        };
    };
    // Most writes by others show here already, before anything of ours is at `path`.
    let id_now = |p: &Path| fs::symlink_metadata(p).ok().and_then(|m| FileId::of(&m));
    if seen.id.is_none() || id_now(path) != seen.id {
        return Ok(Swapped::Changed);
    }
    match renameat_with(CWD, tmp.path(), CWD, path, RenameFlags::EXCHANGE) {
        Ok(()) => {}
        Err(Errno::NOENT) => return Ok(Swapped::Changed),
        Err(e) if unsupported(e) => return Ok(Swapped::Unsupported(tmp)),
        Err(e) => return Err(rename_failed(path, tmp, e.into())),
    }
    // `tmp`'s name now holds the file that was at `path`; ours is at `path`.
    let displaced_id = id_now(tmp.path());
    let unchanged =
        displaced_id == seen.id && Snapshot::read(tmp.path())?.bytes() == Some(expected);
    if unchanged {
        // `tmp` (the old file) is deleted when dropped.
        return Ok(Swapped::Done);
    }
    // Another program replaced the file after we read it: give its file back at once.
    let ours = tmp.as_file().metadata().ok().and_then(|m| FileId::of(&m));
    if let Err(e) = renameat_with(CWD, tmp.path(), CWD, path, RenameFlags::EXCHANGE) {
        return Err(rename_failed(path, tmp, e.into()));
    }
    let back = id_now(tmp.path());
    if back.map(|b| (b.dev, b.ino)) != ours.map(|o| (o.dev, o.ino)) {
        // It replaced ours again within those microseconds: what came back is its newest
        // file; swap once more so that one is at `path`.
        if let Err(e) = renameat_with(CWD, tmp.path(), CWD, path, RenameFlags::EXCHANGE) {
            return Err(rename_failed(path, tmp, e.into()));
        }
    }
    // What is left at the temporary name is deleted with it.
    Ok(Swapped::Changed)
}

/// The temporary file was renamed away: forget it without deleting whatever is at its name.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn disarm(tmp: tempfile::NamedTempFile) {
    let (_file, temp_path) = tmp.into_parts();
    let _ = temp_path.keep();
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
    fn a_key_file_others_can_read_is_named_with_its_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("credentials.json");
        assert_eq!(readable_by_others(&path), None, "no file, nothing to say");
        fs::write(&path, b"{}").unwrap();
        for (bits, readable) in [
            (0o600, false),
            (0o400, false),
            (0o620, false),
            (0o644, true),
            (0o640, true),
            (0o604, true),
        ] {
            fs::set_permissions(&path, fs::Permissions::from_mode(bits)).unwrap();
            let found = readable_by_others(&path);
            assert_eq!(found.is_some(), readable, "{bits:o}");
            if let Some(found) = found {
                assert_eq!(found.mode, bits);
                assert_eq!(found.fix(), format!("chmod 600 {}", path.display()));
                assert_eq!(
                    found.to_string(),
                    format!(
                        "{} is readable by other users of this machine (mode {bits:04o})",
                        path.display()
                    )
                );
            }
        }
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
            assert!(msg.contains("Permission denied"), "{msg}");
            assert!(!msg.contains(".tmp"), "no temporary file name: {msg}");
        }
    }
}
