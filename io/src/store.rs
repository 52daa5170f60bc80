mod crush;
mod dotenv;
mod fsutil;
mod goose;
mod json;
mod keyring;
mod llm;
mod stdout;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use openrouter_auth_core::ApiKey;

pub use crush::{CrushStore, CRUSH_GLOBAL_DATA_VAR};
pub use dotenv::{DotenvStore, DOTENV_VAR};
pub use fsutil::{check_replaceable, readable_by_others, ReadableByOthers};
pub use goose::{
    GooseStore, GOOSE_DISABLE_KEYRING_VAR, GOOSE_KEYRING_ACCOUNT, GOOSE_KEYRING_SERVICE,
    GOOSE_KEY_NAME, GOOSE_PATH_ROOT_VAR,
};
pub use json::{CredentialsFileStore, OpencodeStore};
pub use keyring::{
    keyring_name, KeyringStore, KEYRING_ACCOUNT, KEYRING_SERVICE, KEYRING_SERVICE_VAR,
    KEYRING_SUPPORTED,
};
pub use llm::{LlmStore, LLM_KEY_NAME, LLM_USER_PATH_VAR};
pub use stdout::StdoutStore;

/// Which built-in store, as a value or as text (e.g. from a command line or a settings file).
///
/// Parsed by [`FromStr`] from `file`, `file:PATH`, `opencode`, `aider`, `env-file:PATH`,
/// `stdout`, `keyring`, `llm`, `crush` or `goose` (the kind is matched case-insensitively, the path is taken verbatim, everything after
/// the first `:`). [`Display`](fmt::Display) writes the same forms back, so
/// `spec.to_string().parse()` gives `spec` again for every path that is valid UTF-8.
///
/// A path that starts with `~/` is expanded against [`StoreEnv::home`] by [`open_store`] (shells
/// do not expand `~` after `file:`); other relative paths are relative to the current directory.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreSpec {
    /// Our own JSON credentials file: the default location (`None`) or the given path.
    File(Option<PathBuf>),
    /// opencode's `auth.json`.
    Opencode,
    /// aider's `~/.aider/oauth-keys.env`.
    Aider,
    /// Any dotenv file: sets `OPENROUTER_API_KEY="…"`.
    EnvFile(PathBuf),
    /// Print the key on standard output; store nothing.
    Stdout,
    /// The system keychain ([`KeyringStore`]).
    Keyring,
    /// llm's `keys.json` ([`LlmStore`]).
    Llm,
    /// crush's data configuration `crush.json` ([`CrushStore`]).
    Crush,
    /// goose's secret storage ([`GooseStore`]).
    Goose,
}

impl Default for StoreSpec {
    /// `file`: the default credentials file.
    fn default() -> Self {
        StoreSpec::File(None)
    }
}

/// The forms [`StoreSpec::from_str`] accepts, for error and help messages.
pub const STORE_SPEC_FORMS: &str =
    "file, file:PATH, opencode, aider, env-file:PATH, stdout, keyring, llm, crush, goose";

impl FromStr for StoreSpec {
    type Err = StoreError;

    /// Errors: [`StoreError::BadSpec`] for an unknown kind, a missing `env-file` path, an empty
    /// `file:` path or a path given to a kind that takes none.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, path) = match s.split_once(':') {
            Some((k, p)) => (k, Some(p)),
            None => (s, None),
        };
        let bad = |reason: &str| StoreError::BadSpec {
            input: echo_spec(s),
            reason: reason.to_string(),
        };
        match (kind.to_ascii_lowercase().as_str(), path) {
            ("file", None) => Ok(StoreSpec::File(None)),
            ("file", Some("")) => Err(bad("`file:` needs a path after the colon")),
            ("file", Some(p)) => Ok(StoreSpec::File(Some(PathBuf::from(p)))),
            ("env-file", None) | ("env-file", Some("")) => {
                Err(bad("`env-file` needs a path: env-file:PATH"))
            }
            ("env-file", Some(p)) => Ok(StoreSpec::EnvFile(PathBuf::from(p))),
            ("opencode", None) => Ok(StoreSpec::Opencode),
            ("aider", None) => Ok(StoreSpec::Aider),
            ("stdout", None) => Ok(StoreSpec::Stdout),
            ("keyring", None) => Ok(StoreSpec::Keyring),
            ("llm", None) => Ok(StoreSpec::Llm),
            ("crush", None) => Ok(StoreSpec::Crush),
            ("goose", None) => Ok(StoreSpec::Goose),
            ("opencode" | "aider" | "stdout" | "keyring" | "llm" | "crush" | "goose", Some(_)) => {
                Err(bad(&format!(
                    "`{}` takes no path (its location is fixed)",
                    kind.to_ascii_lowercase()
                )))
            }
            _ => Err(bad("unknown store")),
        }
    }
}

/// The user's input for a bad-spec message; withheld if it looks like an API key was pasted
/// as a store spec by mistake.
fn echo_spec(s: &str) -> String {
    if s.contains("sk-or-") {
        "[input withheld: it looks like an API key]".to_string()
    } else {
        s.to_string()
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::File(None) => f.write_str("file"),
            StoreSpec::File(Some(p)) => write!(f, "file:{}", p.display()),
            StoreSpec::Opencode => f.write_str("opencode"),
            StoreSpec::Aider => f.write_str("aider"),
            StoreSpec::EnvFile(p) => write!(f, "env-file:{}", p.display()),
            StoreSpec::Stdout => f.write_str("stdout"),
            StoreSpec::Keyring => f.write_str("keyring"),
            StoreSpec::Llm => f.write_str("llm"),
            StoreSpec::Crush => f.write_str("crush"),
            StoreSpec::Goose => f.write_str("goose"),
        }
    }
}

/// Where to look things up, so tests need not mutate the process environment.
///
/// Empty values count as unset; a relative `xdg_data_home` is ignored, as the XDG base
/// directory specification requires.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreEnv {
    /// The home directory (`$HOME`): base of `~/.aider/…`, `~/.local/share/…` and `~/` paths.
    pub home: Option<PathBuf>,
    /// `$XDG_DATA_HOME`: where opencode keeps `opencode/auth.json`.
    pub xdg_data_home: Option<PathBuf>,
    /// The platform configuration directory: where the default credentials file lives
    /// (`<config_dir>/openrouter-auth/credentials.json`).
    pub config_dir: Option<PathBuf>,
    /// llm's user directory, holding `keys.json`: `$LLM_USER_PATH`, else click's application
    /// directory `io.datasette.llm` (`None`: `<config_dir>/io.datasette.llm`, as on Linux).
    pub llm_user_dir: Option<PathBuf>,
    /// crush's data directory, holding `crush.json`: `$CRUSH_GLOBAL_DATA` (`None`:
    /// `<data home>/crush`).
    pub crush_data_dir: Option<PathBuf>,
    /// goose's config directory, holding `secrets.yaml` and `config.yaml`:
    /// `$GOOSE_PATH_ROOT/config`, else goose's platform directory (`None`:
    /// `<config_dir>/goose`, as on Linux).
    pub goose_config_dir: Option<PathBuf>,
    /// Whether `GOOSE_DISABLE_KEYRING` is set (goose then keeps secrets in its file).
    pub goose_keyring_disabled: bool,
}

impl StoreEnv {
    /// Sets [`StoreEnv::home`].
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    /// Sets [`StoreEnv::xdg_data_home`].
    pub fn xdg_data_home(mut self, dir: impl Into<PathBuf>) -> Self {
        self.xdg_data_home = Some(dir.into());
        self
    }

    /// Sets [`StoreEnv::config_dir`].
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config_dir = Some(dir.into());
        self
    }

    /// Sets [`StoreEnv::llm_user_dir`].
    pub fn llm_user_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.llm_user_dir = Some(dir.into());
        self
    }

    /// Sets [`StoreEnv::crush_data_dir`].
    pub fn crush_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.crush_data_dir = Some(dir.into());
        self
    }

    /// Sets [`StoreEnv::goose_config_dir`].
    pub fn goose_config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.goose_config_dir = Some(dir.into());
        self
    }

    /// Sets [`StoreEnv::goose_keyring_disabled`].
    pub fn goose_keyring_disabled(mut self, disabled: bool) -> Self {
        self.goose_keyring_disabled = disabled;
        self
    }

    /// Reads the process environment: `HOME` (falling back to the platform's notion of the home
    /// directory via `etcetera::home_dir`), `XDG_DATA_HOME`, and the configuration directory from
    /// `etcetera::choose_base_strategy().config_dir()` (`$XDG_CONFIG_HOME` or `~/.config` on
    /// Linux and macOS, `%APPDATA%` on Windows).
    ///
    /// For the consumers' own directories it reads what they read: `LLM_USER_PATH` (else
    /// click's application directory: `~/Library/Application Support/io.datasette.llm` on
    /// macOS, `<config dir>/io.datasette.llm` elsewhere), `CRUSH_GLOBAL_DATA`,
    /// `GOOSE_PATH_ROOT` (an absolute path; else etcetera's application strategy for goose,
    /// as goose computes it) and whether `GOOSE_DISABLE_KEYRING` is set.
    pub fn from_process() -> Self {
        use etcetera::{AppStrategy, BaseStrategy};
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let home = var("HOME").or_else(|| etcetera::home_dir().ok());
        let config_dir = etcetera::choose_base_strategy()
            .ok()
            .map(|s| s.config_dir());
        let llm_user_dir = var(LLM_USER_PATH_VAR).or_else(|| {
            if cfg!(target_os = "macos") {
                home.as_ref()
                    .map(|h| h.join("Library/Application Support/io.datasette.llm"))
            } else {
                config_dir.as_ref().map(|c| c.join("io.datasette.llm"))
            }
        });
        let goose_config_dir = var(GOOSE_PATH_ROOT_VAR)
            .filter(|p| p.is_absolute())
            .map(|root| root.join("config"))
            .or_else(|| {
                etcetera::choose_app_strategy(etcetera::AppStrategyArgs {
                    top_level_domain: "Block".to_string(),
                    author: "Block".to_string(),
                    app_name: "goose".to_string(),
                })
                .ok()
                .map(|s| s.config_dir())
            });
        StoreEnv {
            home,
            xdg_data_home: var("XDG_DATA_HOME"),
            config_dir,
            llm_user_dir,
            crush_data_dir: var(CRUSH_GLOBAL_DATA_VAR),
            goose_config_dir,
            goose_keyring_disabled: std::env::var_os(GOOSE_DISABLE_KEYRING_VAR).is_some(),
        }
    }

    /// The platform configuration directory, or [`StoreError::NoConfigDir`].
    fn resolved_config_dir(&self) -> Result<&Path, StoreError> {
        self.config_dir
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or(StoreError::NoConfigDir)
    }

    fn home_dir(&self) -> Result<&Path, StoreError> {
        self.home
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or(StoreError::NoHome)
    }

    /// `$XDG_DATA_HOME` if set and absolute, else `$HOME/.local/share`.
    fn data_home(&self) -> Result<PathBuf, StoreError> {
        match self.xdg_data_home.as_deref().filter(|p| p.is_absolute()) {
            Some(p) => Ok(p.to_path_buf()),
            None => Ok(self.home_dir()?.join(".local").join("share")),
        }
    }

    /// Expands a leading `~/` (or a lone `~`) against the home directory.
    fn expand(&self, p: &Path) -> Result<PathBuf, StoreError> {
        let mut comps = p.components();
        match comps.next() {
            Some(std::path::Component::Normal(first)) if first == "~" => {
                Ok(self.home_dir()?.join(comps.as_path()))
            }
            _ => Ok(p.to_path_buf()),
        }
    }
}

/// What we know about the key besides the key itself; stored where the format has room for it
/// (only the `file` store does: the files of other programs get nothing they do not read),
/// and read back by [`KeyStore::load_meta`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyMeta {
    /// The label the key was created with (the OpenRouter key name), if known.
    pub key_label: Option<String>,
    /// The OpenRouter user id the key belongs to, if known.
    pub user_id: Option<String>,
    /// The OpenRouter the key came from (an emulator, `OPENROUTER_AUTH_BASE_URL`…), if known:
    /// its key page ([`ApiKey::key_page_url`]) is there, whatever base URL is in use later.
    pub base_url: Option<url::Url>,
}

impl KeyMeta {
    /// Metadata with this label and user id (either may be unknown).
    pub fn new(key_label: Option<String>, user_id: Option<String>) -> Self {
        KeyMeta {
            key_label,
            user_id,
            base_url: None,
        }
    }

    /// Sets [`KeyMeta::base_url`]: the OpenRouter that issued the key.
    pub fn with_base_url(mut self, base_url: url::Url) -> Self {
        self.base_url = Some(base_url);
        self
    }
}

/// What [`KeyStore::store`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreReport {
    /// Human description of the store, as [`KeyStore::describe`].
    pub description: String,
    /// The file written, if any.
    pub path: Option<PathBuf>,
    /// Unix permission bits of the file after writing (`0o600`); `None` for stdout and on
    /// platforms without unix modes.
    pub mode: Option<u32>,
}

impl StoreReport {
    /// A report for a store that keeps no file (an app's own store): `description` as
    /// [`KeyStore::describe`] says it; set `path` and `mode` if there is a file.
    pub fn new(description: impl Into<String>) -> Self {
        StoreReport {
            description: description.into(),
            path: None,
            mode: None,
        }
    }
}

/// The OpenRouter key a store held at one moment ([`KeyStore::seen`]), kept as the key's
/// SHA-256 ([`ApiKey::key_hash`]), never as the key. `SeenKey::default()` is "no key" (also
/// what an entry that could not be read counts as).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SeenKey(Option<String>);

impl SeenKey {
    /// What a store holding `key` (or no key) was seen to hold.
    pub fn of(key: Option<&ApiKey>) -> Self {
        SeenKey(key.map(ApiKey::key_hash))
    }

    /// Whether `key` is the one that was seen (`None` matches "no key").
    pub fn is(&self, key: Option<&ApiKey>) -> bool {
        *self == SeenKey::of(key)
    }
}

impl fmt::Debug for SeenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "SeenKey(a key)",
            None => "SeenKey(no key)",
        })
    }
}

/// Which OpenRouter key [`KeyStore::store_replacing`] may replace.
///
/// Deliberately exhaustive: an implementation of [`KeyStore::store_replacing`] matches on it,
/// and a new kind of permission must not compile into one that ignores it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Replace {
    /// Whatever the store holds ([`ReplacePolicy::Force`](crate::ReplacePolicy::Force)); what
    /// [`KeyStore::store`] does.
    #[default]
    Any,
    /// Only the key seen earlier (or nothing, or the very key being stored): a different key
    /// found at write time appeared since, and is kept ([`StoreError::KeyAppeared`]).
    Seen(SeenKey),
}

impl Replace {
    /// `Err(KeyAppeared)` if `found` (the key in the store now) may not be replaced by `key`.
    pub(crate) fn check(
        &self,
        describe: impl FnOnce() -> String,
        found: Option<&ApiKey>,
        key: &ApiKey,
    ) -> Result<(), StoreError> {
        match (self, found) {
            (Replace::Seen(seen), Some(found)) if !seen.is(Some(found)) && found != key => {
                Err(StoreError::KeyAppeared {
                    store: describe(),
                    found: found.hint(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// A place that can keep one OpenRouter API key: the built-in stores, or an app's own (pass
/// it to [`crate::login()`] as a [`KeyDestination::Custom`](crate::KeyDestination)).
///
/// # Implementing it
///
/// What [`crate::login()`] relies on, in the order it calls them:
///
/// 1. [`preflight`](KeyStore::preflight), before the browser opens: `Err` if
///    [`store`](KeyStore::store) would refuse any key as things stand (no keychain, a file
///    that cannot be written). Writes nothing that stays. An `Err` ends the login with
///    [`LoginError::Store`](crate::LoginError::Store) before anything is signed in, so no key
///    is minted that could only be handed out. The default accepts.
/// 2. [`seen`](KeyStore::seen), right after: the key held now (default: from
///    [`load`](KeyStore::load)).
/// 3. [`store_replacing`](KeyStore::store_replacing), once, after the code exchange: keeps
///    the key, or says why not. It must never report `Ok` for a key it does not hold, and an
///    `Err` must leave whatever was there before as it was (the login then hands the key to
///    the user with [`LoginError::KeyNotStored`](crate::LoginError::KeyNotStored)). The
///    default loads, refuses with [`StoreError::KeyAppeared`] a key that appeared since
///    `seen`, then calls [`store`](KeyStore::store); override it only to make that check
///    atomic with the write.
///
/// [`load`](KeyStore::load) gives back exactly the key last stored (`None` when there is none
/// or after [`remove`](KeyStore::remove)); `remove` deletes the key and only the key,
/// returning whether there was one. No method may put the key (or any other secret) in an
/// error message, a log line or `Debug` output; keep it in zeroizing buffers
/// ([`ApiKey`] zeroizes itself). A store that keeps the key in memory only is a valid store.
/// The login holds the store's lock only inside these calls, so they should be quick.
///
/// # How it works
///
/// Key stores: where `openrouter-auth` puts the API key once the flow has produced it
/// (PROTOCOL.md section 8).
///
/// | spec text        | store                    | file                                                       |
/// |------------------|--------------------------|------------------------------------------------------------|
/// | `file` (default) | [`CredentialsFileStore`] | `<config dir>/openrouter-auth/credentials.json`            |
/// | `file:PATH`      | [`CredentialsFileStore`] | `PATH`                                                     |
/// | `opencode`       | [`OpencodeStore`]        | `$XDG_DATA_HOME/opencode/auth.json` (default `~/.local/share/…`) |
/// | `aider`          | [`DotenvStore`]          | `~/.aider/oauth-keys.env`                                  |
/// | `env-file:PATH`  | [`DotenvStore`]          | `PATH`                                                     |
/// | `stdout`         | [`StdoutStore`]          | none: the key and a newline on standard output             |
/// | `keyring`        | [`KeyringStore`]         | none: the macOS Keychain, Windows Credential Manager or a Secret Service |
/// | `llm`            | [`LlmStore`]             | `$LLM_USER_PATH/keys.json` (default `~/.config/io.datasette.llm/keys.json`) |
/// | `crush`          | [`CrushStore`]           | `$CRUSH_GLOBAL_DATA/crush.json` (default `$XDG_DATA_HOME/crush/crush.json`) |
/// | `goose`          | [`GooseStore`]           | goose's keyring entry `goose`/`secrets`, or `~/.config/goose/secrets.yaml` |
///
/// The `keyring` store needs the `keyring` feature (on by default) and a keychain to talk to;
/// on a Linux machine without a Secret Service it fails with
/// [`StoreError::KeyringUnavailable`], (the `openrouter-auth` command then suggests the `file` store).
///
/// Rules shared by every file store:
///
/// * **Atomic writes.** The new contents go to a temporary file in the target's directory,
///   created with mode `0600` before any byte of the key is written; the file is fsynced, renamed
///   over the target, and the directory is fsynced (unix). A crash leaves either the old file or
///   the new one, never half of either.
/// * **Private files.** The resulting file always has mode `0600`, even if the previous one was
///   `0644`; [`StoreReport::mode`] says what it ended up as. Parent directories that do not exist
///   are created with mode `0700`; existing directories (such as `$HOME`) are never chmodded.
/// * **Never clobber what we do not understand.** A JSON file that does not parse as a JSON
///   object is left byte-identical and reported as [`StoreError::Unparseable`] /
///   [`StoreError::NotAnObject`]. Everything we do not own (other providers, unknown fields,
///   other dotenv lines) is kept, in order.
/// * **Symbolic links are refused for writing.** If the target path is a symlink (common with
///   dotfile managers), `store` and `remove` fail with [`StoreError::Symlink`], naming the link
///   and its target, and touch nothing: replacing the link with a regular file would silently
///   detach it from the managed copy, and writing through it would put a secret wherever the link
///   points. The user can replace the link with a copy, or name the target directly where
///   the format allows it (`file:TARGET` for our credentials file, `env-file:TARGET` for a
///   dotenv file; opencode's file has no such form).
///   Reading (`load`) follows symlinks.
/// * **Refused before signing in.** [`KeyStore::preflight`] checks what `store` would refuse
///   whatever the key (a symlink, a non-file, a file or dangling link where a directory must be
///   created, a directory where no file can be created and deleted, a JSON file that does not
///   parse, no keychain), and [`crate::login()`] calls it before the browser opens, so no key
///   is minted that could only be printed. It writes nothing that stays, except in an
///   append-only directory, where its empty probe file cannot be deleted (the error names it).
///   It cannot see an immutable or bind-mounted target file; that write fails after signing in
///   and the key is handed out. If a failed rename also leaves the temporary file (holding the
///   key) undeletable, [`StoreError::TempLeft`] names it.
/// * **No secrets in errors or logs.** Errors name the path, the action and the OS error; never
///   the key, and never file contents (JSON syntax errors are reported by category, line and
///   column only). Buffers that hold the key are [`Zeroizing`](zeroize::Zeroizing).
/// * **No write is lost.** Our own writers serialise on an advisory lock on `<file>.lock`
///   beside the target (`flock`, through `fd-lock`), held across read, merge and rename, and
///   deleted before it is released. A program that does not take it (opencode adding a
///   provider, an editor, a script) may still write in between: the new file replaces the
///   target only if the target is still what was merged, else the merge runs again on what that
///   program wrote. On Linux the check and the rename are one atomic step
///   (`renameat2` with `RENAME_NOREPLACE` or `RENAME_EXCHANGE`); elsewhere the target is
///   re-read just before the rename.
/// * **A key that appeared is not replaced silently.** [`KeyStore::store_replacing`] with
///   [`Replace::Seen`] refuses, with [`StoreError::KeyAppeared`], to replace an OpenRouter key
///   other than the one the caller saw earlier ([`KeyStore::seen`]): [`crate::login()`] looks
///   when it starts, so a key another sign-in stored meanwhile is kept (unless
///   [`LoginOptions::replace`](crate::LoginOptions::replace) is [`ReplacePolicy::Force`](crate::ReplacePolicy::Force)).
pub trait KeyStore: Send {
    /// Human description, e.g. `credentials file /home/u/.config/openrouter-auth/credentials.json`.
    fn describe(&self) -> String;

    /// The file this store reads and writes, if any.
    fn location(&self) -> Option<&Path>;

    /// Checks, before anything is signed in, that [`KeyStore::store`] would not refuse this
    /// target whatever the key: for the file stores, a symbolic link or non-file target, a
    /// directory where no file can be created and deleted (read-only mount, no permission,
    /// append-only, a file or dangling link in the way), and for the JSON stores a file that
    /// is not a JSON object (our credentials file: also an `openrouter` entry that is neither
    /// an object nor null). A probe file is created and deleted at once; only an append-only
    /// directory keeps it (empty, named in the error). See the module docs for what it cannot
    /// see. [`crate::login()`] calls it so no key is minted that could not be stored. The
    /// keyring store refuses only when there is no keychain; the default (stdout) checks
    /// nothing.
    ///
    /// Errors: as [`KeyStore::store`], except [`StoreError::UnsafeKey`] and
    /// [`StoreError::Output`].
    fn preflight(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Stores `key` (with `meta` where the format has room), replacing any key already there
    /// and keeping everything else in the file.
    ///
    /// Errors: [`StoreError::Io`] (create directory, lock, read, write, rename…; also when
    /// another program rewrote the file every time it was merged),
    /// [`StoreError::TempLeft`] (the rename failed and the temporary file could not be deleted),
    /// [`StoreError::Unparseable`] / [`StoreError::NotAnObject`] (file left untouched),
    /// [`StoreError::Symlink`], [`StoreError::NotAFile`], [`StoreError::UnsafeKey`] (dotenv),
    /// [`StoreError::Output`] (stdout).
    fn store(&mut self, key: &ApiKey, meta: &KeyMeta) -> Result<StoreReport, StoreError>;

    /// [`KeyStore::store`], replacing only what `replace` allows: with [`Replace::Seen`], an
    /// OpenRouter key other than the one seen (and other than `key`) is kept and
    /// [`StoreError::KeyAppeared`] returned, nothing written. The file stores check this under
    /// their lock, in the same read-merge-write as the store itself; the default (used by the
    /// keyring and stdout stores) loads first, then stores.
    ///
    /// Errors: as [`KeyStore::store`], and [`StoreError::KeyAppeared`].
    fn store_replacing(
        &mut self,
        key: &ApiKey,
        meta: &KeyMeta,
        replace: &Replace,
    ) -> Result<StoreReport, StoreError> {
        if let Replace::Seen(_) = replace {
            if let Ok(found) = self.load() {
                replace.check(|| self.describe(), found.as_ref(), key)?;
            }
        }
        self.store(key, meta)
    }

    /// What the store holds now, for a later [`Replace::Seen`]: the key, or "no key" when
    /// there is none or it cannot be read.
    fn seen(&self) -> SeenKey {
        SeenKey::of(self.load().ok().flatten().as_ref())
    }

    /// The key currently stored, or `None` if there is no file or no key in it.
    ///
    /// Errors: [`StoreError::Io`] on read failures other than "not found",
    /// [`StoreError::Unparseable`], [`StoreError::NotAnObject`], [`StoreError::Malformed`].
    fn load(&self) -> Result<Option<ApiKey>, StoreError>;

    /// What the store recorded with its key ([`KeyMeta`]), as far as its format keeps it:
    /// the credentials file keeps the label, the user id and the base URL the key came from;
    /// the other built-in stores keep nothing, and the default returns
    /// `KeyMeta::default()`. Nothing recorded, or no key: every field `None`.
    ///
    /// Errors: as [`KeyStore::load`].
    fn load_meta(&self) -> Result<KeyMeta, StoreError> {
        Ok(KeyMeta::default())
    }

    /// Removes the key (and only the key's entry/lines). Returns `true` if a key was there.
    /// Nothing is written when there was nothing to remove.
    ///
    /// Errors: as [`KeyStore::store`].
    fn remove(&mut self) -> Result<bool, StoreError>;
}

/// Opens the store named by `spec`, resolving default locations through `env`.
/// Nothing is read or written yet.
///
/// Errors: [`StoreError::NoHome`] when the location needs a home directory and there is none,
/// [`StoreError::NoConfigDir`] for the default `file` store without a configuration directory.
pub fn open_store(spec: &StoreSpec, env: &StoreEnv) -> Result<Box<dyn KeyStore>, StoreError> {
    Ok(match spec {
        StoreSpec::File(Some(p)) => Box::new(CredentialsFileStore::new(env.expand(p)?)),
        StoreSpec::File(None) => {
            let dir = env
                .config_dir
                .as_deref()
                .filter(|p| !p.as_os_str().is_empty())
                .ok_or(StoreError::NoConfigDir)?;
            Box::new(CredentialsFileStore::new(
                dir.join("openrouter-auth").join("credentials.json"),
            ))
        }
        StoreSpec::Opencode => Box::new(OpencodeStore::new(
            env.data_home()?.join("opencode").join("auth.json"),
        )),
        StoreSpec::Aider => Box::new(DotenvStore::aider(
            env.home_dir()?.join(".aider").join("oauth-keys.env"),
        )),
        StoreSpec::EnvFile(p) => Box::new(DotenvStore::new(env.expand(p)?)),
        StoreSpec::Stdout => Box::new(StdoutStore::new()),
        StoreSpec::Keyring => Box::new(KeyringStore::new()),
        StoreSpec::Llm => {
            let dir = match &env.llm_user_dir {
                Some(d) => d.clone(),
                None => env.resolved_config_dir()?.join("io.datasette.llm"),
            };
            Box::new(LlmStore::new(dir.join("keys.json")))
        }
        StoreSpec::Crush => {
            let dir = match &env.crush_data_dir {
                Some(d) => d.clone(),
                None => env.data_home()?.join("crush"),
            };
            Box::new(CrushStore::new(dir.join("crush.json")))
        }
        StoreSpec::Goose => {
            let dir = match &env.goose_config_dir {
                Some(d) => d.clone(),
                None => env.resolved_config_dir()?.join("goose"),
            };
            Box::new(GooseStore::new(dir, env.goose_keyring_disabled))
        }
    })
}

/// An OS error in plain words, once: the system's text without its "(os error 13)" suffix,
/// and for an error that wraps another (tempfile's, which appends the random name of a
/// temporary file) the wrapped one's.
fn io_reason(e: &std::io::Error) -> String {
    if let Some(inner) = e
        .get_ref()
        .and_then(|r| r.source())
        .and_then(|s| s.downcast_ref::<std::io::Error>())
    {
        return io_reason(inner);
    }
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map_or(text.clone(), str::to_owned),
        None => text,
    }
}

/// Why a store could not be opened, read or written. Messages name the file and the OS error;
/// they never contain the key or file contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A store spec ([`StoreSpec`]'s text form) not understood.
    #[error("invalid store `{input}`: {reason}; accepted forms: {forms}", forms = STORE_SPEC_FORMS)]
    BadSpec {
        /// What the user typed (withheld if it looks like a key).
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The location needs a home directory and none is known.
    #[error("cannot locate the home directory (HOME is not set)")]
    NoHome,
    /// The default credentials file needs the platform configuration directory and none is known.
    #[error("cannot locate the configuration directory for the default credentials file")]
    NoConfigDir,
    /// An operating-system call failed.
    #[error("could not {action} {}: {}", path.display(), io_reason(source))]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What we were doing: "read", "create directory", "write temporary file for"…
        action: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid JSON; it was left untouched.
    #[error("{} is not valid JSON ({reason}); left untouched", path.display())]
    Unparseable {
        /// The file.
        path: PathBuf,
        /// Error category, line and column (never file contents).
        reason: String,
    },
    /// The file is valid JSON but not an object (or the `openrouter` entry of our credentials
    /// file is not an object); it was left untouched.
    #[error("{} holds a JSON {found} where an object was expected{}; left untouched",
        path.display(), entry.map(|e| format!(" (entry `{e}`)")).unwrap_or_default())]
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// The offending entry, or `None` for the top level.
        entry: Option<&'static str>,
        /// What was found instead: "array", "string", "number", "boolean", "null".
        found: &'static str,
    },
    /// The key's entry is present but not in a form we can read (e.g. `"key": 42`, or an
    /// unterminated quote in a dotenv line).
    #[error("{} has a malformed key entry: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the value).
        reason: String,
    },
    /// The new file could not be renamed over the target, and its temporary file, which holds
    /// the key (mode 0600), could not be deleted either (an append-only directory).
    #[error("could not rename the temporary file over {}: {source}; the temporary file {} still holds the key and could not be deleted: delete it", path.display(), temp.display())]
    TempLeft {
        /// The target.
        path: PathBuf,
        /// The temporary file left behind.
        temp: PathBuf,
        /// Why the rename failed.
        source: std::io::Error,
    },
    /// The target is a symbolic link; refused, nothing written.
    #[error("{} is a symbolic link to {}; refusing to replace it. Replace the link with a copy of its target, or name the target directly", path.display(), target.display())]
    Symlink {
        /// The link.
        path: PathBuf,
        /// Where it points (as stored in the link).
        target: PathBuf,
    },
    /// The target exists but is not a regular file (a directory, a socket…).
    #[error("{} exists and is not a regular file; left untouched", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The key contains characters that cannot be written safely to a dotenv file
    /// (quotes, backslashes, `$`, whitespace, control or non-ASCII characters).
    #[error("the key contains characters that cannot be written safely to the dotenv file {}; nothing written", path.display())]
    UnsafeKey {
        /// The dotenv file.
        path: PathBuf,
    },
    /// There is no keychain to talk to: on Linux no Secret Service is running (servers,
    /// containers, SSH sessions without a desktop), or this build or platform has no keyring
    /// support. Nothing was read or written.
    #[error("{reason}")]
    KeyringUnavailable {
        /// What is missing, e.g. `no secret service is running on this machine (…)`.
        reason: String,
    },
    /// The keychain refused an operation.
    #[error("could not {action} the {what}: {reason}")]
    Keyring {
        /// What we were doing: "read the key from", "write the key to", "remove the key from".
        action: &'static str,
        /// Which keychain (see [`keyring_name`]).
        what: &'static str,
        /// What it said (never the key).
        reason: String,
    },
    /// The store holds an OpenRouter key that was not there when the caller looked
    /// ([`Replace::Seen`]): another sign-in or another program stored it meanwhile. It was
    /// kept, and nothing was written.
    #[error("{store} now holds another OpenRouter key ({found}), stored after this sign-in began (by another sign-in or program); it was kept and this key was not stored there")]
    KeyAppeared {
        /// The store ([`KeyStore::describe`]).
        store: String,
        /// The key found, as [`ApiKey::hint`] (never the key).
        found: String,
    },
    /// A store outside this crate (an app's own [`KeyStore`]) failed; `message` says why
    /// (never the key).
    #[error("{message}")]
    Custom {
        /// Why, in words.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Writing to standard output (or the injected writer) failed.
    #[error("could not write the key to standard output: {source}")]
    Output {
        /// The OS error.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    pub(crate) const KEY: &str =
        "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    pub(crate) const KEY2: &str =
        "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";

    pub(crate) fn env_in(dir: &TempDir) -> StoreEnv {
        StoreEnv {
            home: Some(dir.path().join("home")),
            xdg_data_home: None,
            config_dir: Some(dir.path().join("home").join(".config")),
            goose_keyring_disabled: true,
            ..StoreEnv::default()
        }
    }

    #[test]
    fn spec_parse_display_round_trip() {
        let specs = [
            StoreSpec::File(None),
            StoreSpec::File(Some(PathBuf::from("/tmp/x y/creds.json"))),
            StoreSpec::File(Some(PathBuf::from("C:\\Users\\u\\creds.json"))),
            StoreSpec::Opencode,
            StoreSpec::Aider,
            StoreSpec::EnvFile(PathBuf::from("./.env")),
            StoreSpec::EnvFile(PathBuf::from("a:b")),
            StoreSpec::Stdout,
            StoreSpec::Keyring,
            StoreSpec::Llm,
            StoreSpec::Crush,
            StoreSpec::Goose,
        ];
        for spec in specs {
            let text = spec.to_string();
            assert_eq!(text.parse::<StoreSpec>().unwrap(), spec, "{text}");
        }
        assert_eq!("file".parse::<StoreSpec>().unwrap(), StoreSpec::default());
        assert_eq!(
            "OpenCode".parse::<StoreSpec>().unwrap(),
            StoreSpec::Opencode
        );
        assert_eq!(
            "env-file:~/.env".parse::<StoreSpec>().unwrap().to_string(),
            "env-file:~/.env"
        );
    }

    #[test]
    fn spec_errors_list_accepted_forms() {
        let err = "bogus".parse::<StoreSpec>().unwrap_err().to_string();
        assert!(err.contains("`bogus`"), "{err}");
        assert!(err.contains("unknown store"), "{err}");
        for form in [
            "file:PATH",
            "opencode",
            "aider",
            "env-file:PATH",
            "stdout",
            "keyring",
            "llm",
            "crush",
            "goose",
        ] {
            assert!(err.contains(form), "{err}");
        }
        for bad in [
            "env-file",
            "env-file:",
            "file:",
            "aider:/x",
            "stdout:x",
            "keyring:x",
            "llm:x",
            "crush:/x",
            "goose:x",
            "",
        ] {
            let err = bad.parse::<StoreSpec>().unwrap_err().to_string();
            assert!(err.contains("accepted forms"), "{bad}: {err}");
        }
        let err = KEY.parse::<StoreSpec>().unwrap_err().to_string();
        assert!(
            !err.contains(KEY) && !err.contains("0123456789abcdef"),
            "{err}"
        );
    }

    #[test]
    fn open_store_resolves_locations() {
        let dir = TempDir::new().unwrap();
        let env = env_in(&dir);
        let home = dir.path().join("home");
        let s = open_store(&StoreSpec::File(None), &env).unwrap();
        assert_eq!(
            s.location().unwrap(),
            home.join(".config/openrouter-auth/credentials.json")
        );
        assert!(s.describe().starts_with("credentials file "));
        let s = open_store(&StoreSpec::Opencode, &env).unwrap();
        assert_eq!(
            s.location().unwrap(),
            home.join(".local/share/opencode/auth.json")
        );
        let xdg = StoreEnv {
            xdg_data_home: Some(dir.path().join("xdg")),
            ..env.clone()
        };
        let s = open_store(&StoreSpec::Opencode, &xdg).unwrap();
        assert_eq!(
            s.location().unwrap(),
            dir.path().join("xdg/opencode/auth.json")
        );
        let relative_xdg = StoreEnv {
            xdg_data_home: Some(PathBuf::from("rel")),
            ..env.clone()
        };
        let s = open_store(&StoreSpec::Opencode, &relative_xdg).unwrap();
        assert_eq!(
            s.location().unwrap(),
            home.join(".local/share/opencode/auth.json")
        );
        let s = open_store(&StoreSpec::Aider, &env).unwrap();
        assert_eq!(s.location().unwrap(), home.join(".aider/oauth-keys.env"));
        let s = open_store(&"env-file:~/proj/.env".parse().unwrap(), &env).unwrap();
        assert_eq!(s.location().unwrap(), home.join("proj/.env"));
        let s = open_store(&"file:/abs/c.json".parse().unwrap(), &env).unwrap();
        assert_eq!(s.location().unwrap(), Path::new("/abs/c.json"));
        let s = open_store(&StoreSpec::Llm, &env).unwrap();
        assert_eq!(
            s.location().unwrap(),
            home.join(".config/io.datasette.llm/keys.json")
        );
        let s = open_store(&StoreSpec::Crush, &env).unwrap();
        assert_eq!(
            s.location().unwrap(),
            home.join(".local/share/crush/crush.json")
        );
        let s = open_store(&StoreSpec::Crush, &xdg).unwrap();
        assert_eq!(
            s.location().unwrap(),
            dir.path().join("xdg/crush/crush.json")
        );
        let s = open_store(&StoreSpec::Goose, &env).unwrap();
        assert_eq!(
            s.location().unwrap(),
            home.join(".config/goose/secrets.yaml")
        );
        let moved = StoreEnv {
            llm_user_dir: Some(dir.path().join("llm")),
            crush_data_dir: Some(dir.path().join("crush")),
            goose_config_dir: Some(dir.path().join("root/config")),
            ..env.clone()
        };
        let s = open_store(&StoreSpec::Llm, &moved).unwrap();
        assert_eq!(s.location().unwrap(), dir.path().join("llm/keys.json"));
        let s = open_store(&StoreSpec::Crush, &moved).unwrap();
        assert_eq!(s.location().unwrap(), dir.path().join("crush/crush.json"));
        let s = open_store(&StoreSpec::Goose, &moved).unwrap();
        assert_eq!(
            s.location().unwrap(),
            dir.path().join("root/config/secrets.yaml")
        );
        let s = open_store(&StoreSpec::Stdout, &env).unwrap();
        assert_eq!(s.location(), None);
        assert_eq!(s.describe(), "standard output");

        let empty = StoreEnv::default();
        assert!(matches!(
            open_store(&StoreSpec::Aider, &empty),
            Err(StoreError::NoHome)
        ));
        assert!(matches!(
            open_store(&StoreSpec::Opencode, &empty),
            Err(StoreError::NoHome)
        ));
        assert!(matches!(
            open_store(&StoreSpec::File(None), &empty),
            Err(StoreError::NoConfigDir)
        ));
        assert!(open_store(&StoreSpec::Stdout, &empty).is_ok());
    }

    #[test]
    fn every_store_round_trips_through_open_store() {
        let dir = TempDir::new().unwrap();
        let env = env_in(&dir);
        let meta = KeyMeta::new(Some("laptop".into()), Some("user_1".into()));
        for spec in [
            StoreSpec::File(None),
            StoreSpec::Opencode,
            StoreSpec::Aider,
            StoreSpec::EnvFile(dir.path().join("proj/.env")),
            StoreSpec::Llm,
            StoreSpec::Crush,
            StoreSpec::Goose,
        ] {
            let mut s = open_store(&spec, &env).unwrap();
            assert!(s.load().unwrap().is_none(), "{spec}");
            assert!(!s.remove().unwrap(), "{spec}");
            let report = s.store(&ApiKey::new(KEY), &meta).unwrap();
            assert_eq!(report.path.as_deref(), s.location(), "{spec}");
            assert_eq!(report.description, s.describe());
            #[cfg(unix)]
            assert_eq!(report.mode, Some(0o600), "{spec}");
            assert_eq!(s.load().unwrap().unwrap().expose_secret(), KEY, "{spec}");
            s.store(&ApiKey::new(KEY2), &meta).unwrap();
            assert_eq!(s.load().unwrap().unwrap().expose_secret(), KEY2, "{spec}");
            assert!(s.remove().unwrap(), "{spec}");
            assert!(s.load().unwrap().is_none(), "{spec}");
            assert!(!s.remove().unwrap(), "{spec}");
        }
    }

    #[test]
    fn errors_do_not_leak_the_key() {
        let e = StoreError::UnsafeKey {
            path: PathBuf::from("/x/.env"),
        };
        assert!(e.to_string().contains("/x/.env"));
        let e = StoreError::Io {
            path: PathBuf::from("/x/y"),
            action: "read",
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let msg = e.to_string();
        assert!(msg.contains("could not read /x/y"), "{msg}");
        assert!(msg.contains("permission denied"), "{msg}");
    }

    #[test]
    fn an_os_error_is_told_once() {
        let e = StoreError::Io {
            path: PathBuf::from("/x/y"),
            action: "read",
            source: std::io::Error::from_raw_os_error(13),
        };
        // Not "Permission denied (os error 13) (PermissionDenied)".
        assert_eq!(e.to_string(), "could not read /x/y: Permission denied");
    }
}
