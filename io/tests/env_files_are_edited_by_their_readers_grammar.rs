//! Env files are edited by the grammar their readers use (issue 12, rule 5).
//!
//! The readers are real: python-dotenv (what aider loads `~/.aider/oauth-keys.env` with;
//! `dotenv_values`, the parser and interpolation of `load_dotenv`) and bash sourcing the
//! file (`set -a; source FILE` for every variable, `source FILE` alone for the exported ones).
//! After a store, both read our key and every other variable exactly as before; after a
//! remove, our variable is gone and every other one is still as before.
//!
//! python-dotenv missing: the tests fail when `OPENROUTER_AUTH_REQUIRE_CONSUMERS=1` (CI sets
//! it and installs it), and are skipped with a message otherwise.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use openrouter_auth::core::ApiKey;
use openrouter_auth::{DotenvStore, KeyMeta, KeyStore};
use proptest::prelude::*;

const KEY: &str = "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";
const VAR: &str = "OPENROUTER_API_KEY";

type Vars = BTreeMap<String, Option<String>>;

/// One python3 process with python-dotenv, answering a file path per line with its values.
struct PythonDotenv {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

const PYTHON_READER: &str = r#"
import json, sys
try:
    from dotenv import dotenv_values
    from importlib.metadata import version
    print(json.dumps({"version": version("python-dotenv")}), flush=True)
except Exception as e:
    print(json.dumps({"missing": repr(e)}), flush=True)
    sys.exit(0)
for line in sys.stdin:
    try:
        print(json.dumps({"values": dotenv_values(line.rstrip("\n"))}), flush=True)
    except Exception as e:
        print(json.dumps({"error": repr(e)}), flush=True)
"#;

impl PythonDotenv {
    /// `None` (after printing why) when python-dotenv is not there and CI does not require it.
    fn start() -> Option<PythonDotenv> {
        let required = std::env::var("OPENROUTER_AUTH_REQUIRE_CONSUMERS").as_deref() == Ok("1");
        let missing = |why: String| {
            assert!(
                !required,
                "python-dotenv is required (OPENROUTER_AUTH_REQUIRE_CONSUMERS=1): {why}"
            );
            eprintln!("skipped: python-dotenv is not available ({why}); `python3 -m pip install python-dotenv==1.0.1`");
            None
        };
        let child = Command::new("python3")
            .args(["-c", PYTHON_READER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return missing(format!("python3: {e}")),
        };
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let hello: serde_json::Value = serde_json::from_str(&first).unwrap();
        if let Some(why) = hello["missing"].as_str() {
            return missing(why.to_string());
        }
        eprintln!("python-dotenv {}", hello["version"]);
        Some(PythonDotenv {
            _child: child,
            stdin,
            stdout,
        })
    }

    fn read(&mut self, path: &Path) -> Vars {
        writeln!(self.stdin, "{}", path.display()).unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let answer: serde_json::Value = serde_json::from_str(&line).unwrap();
        let values = answer["values"]
            .as_object()
            .unwrap_or_else(|| panic!("python-dotenv failed: {answer}"));
        values
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned)))
            .collect()
    }
}

/// The variables bash has after sourcing `path`: all of them (`set -a`) or only the exported.
fn bash(path: &Path, all: bool) -> Vars {
    let script = if all {
        r#"set -a; source "$1" || exit 3; env -0"#
    } else {
        r#"source "$1" || exit 3; env -0"#
    };
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", script, "bash"])
        .arg(path)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run bash");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "bash could not source {}: {}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&std::fs::read(path).unwrap())
    );
    out.stdout
        .split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .filter_map(|v| {
            let v = String::from_utf8(v.to_vec()).unwrap();
            let (k, v) = v.split_once('=')?;
            // bash's own variables
            (!matches!(k, "PWD" | "OLDPWD" | "SHLVL" | "_" | "PATH"))
                .then(|| (k.to_string(), Some(v.to_string())))
        })
        .collect()
}

/// What each reader sees in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Views {
    python: Vars,
    bash_all: Vars,
    bash_exported: Vars,
}

fn views(python: &mut PythonDotenv, path: &Path) -> Views {
    Views {
        python: python.read(path),
        bash_all: bash(path, true),
        bash_exported: bash(path, false),
    }
}

fn without_ours(v: &Vars) -> Vars {
    let mut v = v.clone();
    v.remove(VAR);
    v
}

/// Stores [`KEY`] into a file holding `content`, then removes it, checking both readers
/// after each step. `Err` describes the first difference.
fn store_then_remove(python: &mut PythonDotenv, content: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, content).unwrap();
    let before = views(python, &path);
    let mut store = DotenvStore::new(&path);
    store
        .store(&ApiKey::new(KEY), &KeyMeta::default())
        .map_err(|e| e.to_string())?;
    let file = || String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
    let stored = views(python, &path);
    let ours = Some(KEY.to_string());
    let check = |what: &str, ok: bool| match ok {
        true => Ok(()),
        false => Err(format!(
            "{what}\nbefore: {before:?}\nafter store: {stored:?}\nfile now:\n{}",
            file()
        )),
    };
    check(
        "python-dotenv reads another key after the store",
        stored.python.get(VAR) == Some(&ours),
    )?;
    check(
        "bash reads another key after the store",
        stored.bash_all.get(VAR) == Some(&ours),
    )?;
    check(
        "the key's export changed",
        stored.bash_exported.contains_key(VAR) == before.bash_exported.contains_key(VAR),
    )?;
    check(
        "python-dotenv reads other variables differently after the store",
        without_ours(&stored.python) == without_ours(&before.python),
    )?;
    check(
        "bash reads other variables differently after the store",
        without_ours(&stored.bash_all) == without_ours(&before.bash_all)
            && without_ours(&stored.bash_exported) == without_ours(&before.bash_exported),
    )?;
    check(
        "load reads another key",
        store
            .load()
            .map_err(|e| e.to_string())?
            .map(|k| k.expose_secret().to_owned())
            == ours,
    )?;
    store.remove().map_err(|e| e.to_string())?;
    let removed = views(python, &path);
    let expected = Views {
        python: without_ours(&before.python),
        bash_all: without_ours(&before.bash_all),
        bash_exported: without_ours(&before.bash_exported),
    };
    if removed != expected {
        return Err(format!(
            "after remove: {removed:?}\nexpected: {expected:?}\nfile now:\n{}",
            file()
        ));
    }
    check("load still finds a key", store.load().ok() == Some(None))?;
    Ok(())
}

#[test]
fn an_export_line_stays_an_export_line_with_its_indentation() {
    let Some(mut python) = PythonDotenv::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oauth-keys.env");
    std::fs::write(
        &path,
        "A=1\n  export OPENROUTER_API_KEY=sk-or-v1-old # mine\nB=2\n",
    )
    .unwrap();
    DotenvStore::aider(&path)
        .store(&ApiKey::new(KEY), &KeyMeta::default())
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("A=1\n  export OPENROUTER_API_KEY=\"{KEY}\" # mine\nB=2\n")
    );
    // A child process of a shell that sourced the file still gets the key.
    assert_eq!(bash(&path, false).get(VAR), Some(&Some(KEY.to_string())));
    assert_eq!(python.read(&path).get(VAR), Some(&Some(KEY.to_string())));
}

#[test]
fn a_line_inside_another_quoted_value_is_not_an_assignment() {
    let Some(mut python) = PythonDotenv::start() else {
        return;
    };
    let content = "CERT=\"-----BEGIN-----\nOPENROUTER_API_KEY=not-this-one\n-----END-----\"\nNOTE='two\n  export OPENROUTER_API_KEY=nor-this\nlines'\nOPENROUTER_API_KEY=sk-or-v1-old\n";
    store_then_remove(&mut python, content.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    // Load reads the real assignment, not the text inside CERT.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, content).unwrap();
    let found = DotenvStore::new(&path).load().unwrap().unwrap();
    assert_eq!(found.expose_secret(), "sk-or-v1-old");
}

#[test]
fn every_form_of_our_assignment_is_replaced_and_removed() {
    let Some(mut python) = PythonDotenv::start() else {
        return;
    };
    for ours in [
        "OPENROUTER_API_KEY=sk-or-v1-old",
        "export OPENROUTER_API_KEY='sk-or-v1-old' # note",
        "\texport\tOPENROUTER_API_KEY=\"sk-or-v1-old\"",
        "OPENROUTER_API_KEY=\"sk-or-v1-old\nsecond line\"",
        "OPENROUTER_API_KEY=",
        "OPENROUTER_API_KEY=sk-or-v1-old\nexport OPENROUTER_API_KEY=sk-or-v1-older",
    ] {
        let content = format!("# settings\nA=1\n{ours}\nB='x y'\n");
        store_then_remove(&mut python, content.as_bytes())
            .unwrap_or_else(|e| panic!("{ours:?}: {e}"));
    }
}

/// A piece of a quoted value: text, a line break, or a line that looks like a statement.
fn quoted_piece(double: bool) -> impl Strategy<Value = String> {
    let mut pieces = vec![
        "abc",
        "Z9",
        " ",
        "\n",
        "=",
        " # not a comment",
        "OPENROUTER_API_KEY=inside",
        "\nexport OPENROUTER_API_KEY=inside\n",
        "\n# OPENROUTER_API_KEY=inside\n",
        "-_.,:/@%+",
    ];
    if double {
        pieces.extend(["\\\"", "\\n", "'"]);
    } else {
        pieces.push("\"");
    }
    prop::sample::select(pieces).prop_map(str::to_owned)
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_./:@%+,=-]{0,12}",
        prop::collection::vec(quoted_piece(false), 0..6).prop_map(|p| format!("'{}'", p.concat())),
        prop::collection::vec(quoted_piece(true), 0..6).prop_map(|p| format!("\"{}\"", p.concat())),
    ]
}

fn statement() -> impl Strategy<Value = String> {
    let indent = prop::sample::select(vec!["", "  ", "\t"]);
    let export = prop::sample::select(vec!["", "export ", "export\t"]);
    let comment = prop::sample::select(vec!["", " # note", "\t# OPENROUTER_API_KEY=no"]);
    let name = prop_oneof![
        4 => "V_[A-Z0-9]{1,3}",
        1 => Just(VAR.to_string()),
    ];
    let assignment = (indent, export, name, value(), comment).prop_map(|(i, e, n, v, c)| {
        // A bash comment needs a blank before it; a bare empty value takes it from `=`.
        format!("{i}{e}{n}={v}{c}")
    });
    prop_oneof![
        6 => assignment,
        1 => prop::sample::select(vec!["", "# a comment", "  # OPENROUTER_API_KEY=commented"])
            .prop_map(str::to_owned),
    ]
}

fn env_file() -> impl Strategy<Value = String> {
    (prop::collection::vec(statement(), 0..8), any::<bool>()).prop_map(|(lines, final_newline)| {
        let mut text = lines.join("\n");
        if final_newline && !text.is_empty() {
            text.push('\n');
        }
        text
    })
}

/// One python-dotenv process for every proptest case.
static PYTHON: Mutex<Option<Option<PythonDotenv>>> = Mutex::new(None);

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn other_variables_read_back_the_same_in_both_readers(content in env_file()) {
        let mut guard = PYTHON.lock().unwrap_or_else(|p| p.into_inner());
        let Some(python) = guard.get_or_insert_with(PythonDotenv::start) else {
            return Ok(());
        };
        if let Err(e) = store_then_remove(python, content.as_bytes()) {
            prop_assert!(false, "{}\noriginal file:\n{}", e, content);
        }
    }
}
