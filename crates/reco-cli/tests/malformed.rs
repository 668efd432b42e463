//! The malformed-input corpus: every case in `tests/malformed/*.toml` runs the `reco` binary on
//! bad input (files, specifications, protocols, artifacts, arguments, special files) and checks
//! what a careless or hostile user must get: no panic, no abort, no hang, a non-zero exit (or,
//! where the input is legal but suspicious, exit 0 with a warning), and a message that names
//! the file or parameter at fault and says what to do.
//!
//! A case is a `[[case]]` table:
//!
//! ```toml
//! [[case]]
//! name = "fifo-as-test-file"
//! files = { "train.csv" = "user,item\n1,a\n" }   # written into a fresh directory
//! fifos = ["test.csv"]                           # named pipes made there
//! links = { "zero.csv" = "/dev/zero" }           # symbolic links
//! repeat = { "long.csv" = ["user,item\n", "9", 17000000] }  # prefix, then a filler n times
//! setup = [["train", "--data", "{dir}/train.csv", "--out", "{dir}/m"]]  # must succeed
//! after = { "m/manifest.json" = ["\"n_items\": 2", "\"n_items\": 3"] }  # replace in a file
//! truncate = { "m/model.bin" = 10 }              # cut a file to this many bytes
//! args = ["eval", "--train", "{dir}/train.csv", "--test", "{dir}/test.csv"]
//! exit = 4                                       # expected status; 0 means "warns"
//! stderr = ["test.csv", "FIFO"]                  # substrings the message must contain
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    case: Vec<Case>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    fifos: Vec<String>,
    #[serde(default)]
    links: BTreeMap<String, String>,
    #[serde(default)]
    repeat: BTreeMap<String, (String, String, usize)>,
    #[serde(default)]
    setup: Vec<Vec<String>>,
    #[serde(default)]
    after: BTreeMap<String, (String, String)>,
    #[serde(default)]
    truncate: BTreeMap<String, u64>,
    #[serde(default)]
    remove: Vec<String>,
    args: Vec<String>,
    exit: i32,
    #[serde(default)]
    stderr: Vec<String>,
    /// Seconds before the case counts as a hang.
    #[serde(default = "default_timeout")]
    timeout: u64,
}

fn default_timeout() -> u64 {
    60
}

/// The most a refusal may print: an error is a line or two, not a dump of the input.
const MAX_STDERR: usize = 4096;

fn main() {
    let args = Arguments::from_args();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/malformed")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut trials = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for p in paths {
        let group = p.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p).expect("read case file");
        let file: File = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        for case in file.case {
            let name = format!("{group}::{}", case.name);
            assert!(names.insert(name.clone()), "duplicate case {name}");
            trials.push(Trial::test(name, move || run(&case)));
        }
    }
    assert!(
        trials.len() >= 100,
        "the corpus holds {} cases; it must hold at least 100",
        trials.len()
    );
    libtest_mimic::run(&args, trials).exit();
}

fn fill(dir: &Path, files: &BTreeMap<String, String>) -> Result<(), Failed> {
    for (name, text) in files {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, unescape(text))?;
    }
    Ok(())
}

/// `\xNN` in case text stands for a raw byte, so binary content fits in TOML.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut k = 0;
    while k < b.len() {
        if b[k] == b'\\' && b.get(k + 1) == Some(&b'x') && k + 4 <= b.len() {
            let hex = std::str::from_utf8(&b[k + 2..k + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                k += 4;
                continue;
            }
        }
        out.push(b[k]);
        k += 1;
    }
    out
}

fn expand(args: &[String], dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy();
    args.iter().map(|a| a.replace("{dir}", &d)).collect()
}

/// Runs `reco` with a deadline; returns (status code, stderr) or an error for a hang.
fn reco(args: &[String], dir: &Path, timeout: u64) -> Result<(Option<i32>, String), Failed> {
    let err_path = dir.join(".stderr");
    let err_file = std::fs::File::create(&err_path)?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_reco"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("hung: no exit after {timeout} s").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = String::from_utf8_lossy(&std::fs::read(&err_path)?).into_owned();
    Ok((status.code(), err))
}

fn run(case: &Case) -> Result<(), Failed> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    fill(dir, &case.files)?;
    for (name, (prefix, filler, n)) in &case.repeat {
        let mut bytes = unescape(prefix);
        let f = unescape(filler);
        for _ in 0..*n {
            bytes.extend_from_slice(&f);
        }
        std::fs::write(dir.join(name), bytes)?;
    }
    for name in &case.fifos {
        let c = std::ffi::CString::new(dir.join(name).to_string_lossy().as_bytes())?;
        // SAFETY: mkfifo with a valid NUL-terminated path.
        if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
            return Err("mkfifo failed".into());
        }
    }
    for (name, target) in &case.links {
        std::os::unix::fs::symlink(target, dir.join(name))?;
    }
    for step in &case.setup {
        let (code, err) = reco(&expand(step, dir), dir, case.timeout)?;
        if code != Some(0) {
            return Err(format!("setup {step:?} failed ({code:?}): {err}").into());
        }
    }
    for (name, (from, to)) in &case.after {
        let p = dir.join(name);
        let text = std::fs::read_to_string(&p)?;
        if !text.contains(from.as_str()) {
            return Err(format!("{name} does not contain {from:?}: {text}").into());
        }
        std::fs::write(&p, text.replacen(from.as_str(), to, 1))?;
    }
    for (name, len) in &case.truncate {
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(name))?
            .set_len(*len)?;
    }
    for name in &case.remove {
        let p = dir.join(name);
        if p.is_dir() {
            std::fs::remove_dir_all(p)?;
        } else {
            std::fs::remove_file(p)?;
        }
    }
    let (code, err) = reco(&expand(&case.args, dir), dir, case.timeout)?;
    let shown = || format!("exit {code:?}, stderr:\n{err}");
    if err.contains("panicked") || err.contains("stack backtrace") {
        return Err(format!("panicked: {}", shown()).into());
    }
    match code {
        None => return Err(format!("killed by a signal (an abort?): {}", shown()).into()),
        Some(101 | 134) => return Err(format!("crashed: {}", shown()).into()),
        Some(c) if c != case.exit => {
            return Err(format!("expected exit {}, got {}", case.exit, shown()).into())
        }
        _ => {}
    }
    if case.exit == 0 && !err.contains("warning:") {
        return Err(format!("accepted without a warning: {}", shown()).into());
    }
    if case.exit != 0 && !err.contains("error:") {
        return Err(format!("failed without an error message: {}", shown()).into());
    }
    if err.len() > MAX_STDERR {
        return Err(format!("{} bytes of stderr: {}", err.len(), shown()).into());
    }
    for want in &case.stderr {
        let want = want.replace("{dir}", &dir.to_string_lossy());
        if !err.contains(&want) {
            return Err(format!("message lacks {want:?}: {}", shown()).into());
        }
    }
    Ok(())
}
