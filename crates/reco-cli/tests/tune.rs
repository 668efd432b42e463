//! `reco tune` end to end: a search writes its trials, its result and the winner as model
//! files the other commands take; the same command resumes it; bad tune files fail before the
//! data are read.

use std::path::Path;

mod common;
use common::{reco, stderr, stdout};

const DATA: &str = "synth:users=200,items=80,interactions=5000,seed=3";

fn tune_file(dir: &Path, body: &str) -> String {
    let p = dir.join("tune.toml");
    std::fs::write(&p, body).expect("write");
    p.to_string_lossy().into_owned()
}

#[test]
fn a_search_writes_a_winner_that_train_and_eval_take_and_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = tune_file(
        dir.path(),
        "metric = \"recall@10\"\ntrials = 4\nstrategy = \"random\"\n\n[model]\nmodel = \"ials\"\nepochs = 3\n\n\
         [space]\nfactors = { int = [4, 16] }\nregularization = { float = [0.01, 1.0], log = true }\n",
    );
    let out = dir.path().join("out");
    let args = |trials: &str| {
        vec![
            "tune".to_string(),
            "--data".into(),
            DATA.into(),
            "--space".into(),
            file.clone(),
            "--trials".into(),
            trials.into(),
            "--out".into(),
            out.to_string_lossy().into_owned(),
            "--json".into(),
        ]
    };
    let run = |trials: &str| {
        let a = args(trials);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        reco(&refs)
    };
    let o = run("4");
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["trials"].as_array().map(Vec::len), Some(4));
    assert_eq!(v["metric"], "recall@10");
    let lines = std::fs::read_to_string(out.join("trials.jsonl")).expect("trials");
    assert_eq!(lines.lines().count(), 5, "a header and four trials");
    // Two more trials: the four are read back, not run again.
    let o = run("6");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming: 4 trials"), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["trials"].as_array().map(Vec::len), Some(6));
    for name in ["best.toml", "best.json"] {
        let m = out.join(name);
        let o = reco(&[
            "train",
            "--data",
            DATA,
            "--model",
            m.to_str().expect("path"),
            "--out",
            dir.path()
                .join(format!("model-{name}"))
                .to_str()
                .expect("path"),
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
    let best = std::fs::read_to_string(out.join("best.json")).expect("best");
    let best: serde_json::Value = serde_json::from_str(&best).expect("json");
    assert_eq!(best["factors"], v["folds"][0]["params"]["factors"]);
}

#[test]
fn bad_tune_files_fail_before_the_data_are_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (body, words) in [
        ("[model]\nmodel = \"ials\"\n", "[space]"),
        ("[space]\nfactors = { int = [4, 16] }\n", "[model]"),
        ("[model]\nmodel = \"ials\"\n[space]\nfactrs = { int = [4, 16] }\n", "factrs"),
        ("[model]\nmodel = \"ials\"\n[space]\nfactors = { int = [0, 16] }\n", "factors = 0"),
        ("metric = \"coverage@10\"\n[model]\nmodel = \"ials\"\n[space]\nfactors = { int = [4, 16] }\n", "coverage@10"),
        ("metric = \"rmse\"\n[model]\nmodel = \"ials\"\n[space]\nfactors = { int = [4, 16] }\n", "predicts ratings"),
        ("tirals = 3\n[model]\nmodel = \"ials\"\n[space]\nfactors = { int = [4, 16] }\n", "tirals"),
    ] {
        let file = tune_file(dir.path(), body);
        let o = reco(&[
            "tune",
            "--data",
            "/no/such/data",
            "--space",
            &file,
            "--out",
            dir.path().join("o").to_str().expect("path"),
        ]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{body}: {e}");
        assert!(e.contains(words), "{body}: {e}");
    }
}
