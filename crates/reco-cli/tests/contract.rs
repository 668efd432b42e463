//! The model contract seen from the command line: whole model files validated before training,
//! exit codes by error category, renamed parameters, and `reco models`.

mod common;
use common::{reco, stderr, stdout};

#[test]
fn a_models_file_is_validated_whole_before_anything_trains() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("models.toml");
    // The first model cannot train on 20,001 items (EASE's dense limit, a fit-time check):
    // were training to start before the third model is checked, that would be the error.
    std::fs::write(
        &file,
        "[[model]]\nmodel = \"ease\"\n\n[[model]]\nmodel = \"popularity\"\n\n\
         [[model]]\nmodel = \"svd\"\nfactors = 0\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = reco(&[
        "eval",
        "--data",
        "synth:users=50,items=20001,interactions=3000,seed=1",
        "--protocol",
        "holdout:0.2",
        "--models",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "spec errors exit with 3: {e}");
    assert!(e.contains("model #3") && e.contains("factors"), "{e}");
    assert!(!e.contains("ease accepts"), "training started: {e}");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn exit_codes_say_what_kind_of_error_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never-written");
    let o = reco(&[
        "train",
        "--data",
        "/no/such/dir/ratings.csv",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(5), "I/O: {}", stderr(&o));
    let o = reco(&[
        "train",
        "--data",
        "synth:users=20,items=10,interactions=100",
        "--model",
        r#"{"model":"nope"}"#,
        "--out",
        "/tmp/x",
    ]);
    assert_eq!(o.status.code(), Some(3), "spec: {}", stderr(&o));
    assert!(stderr(&o).contains("two-tower"), "lists the kinds");
    let o = reco(&["eval", "--bogus-flag"]);
    assert_eq!(o.status.code(), Some(2), "usage");
    // A capability the spec says the model lacks fails before the data are read.
    let o = reco(&[
        "eval",
        "--data",
        "/no/such/data",
        "--ratings-only",
        "--model",
        "svd",
        "--model",
        "popularity",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("\"popularity\" (popularity) does not predict ratings"));
    // Settings are checked before anything is written.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = reco(&[
        "eval",
        "--data",
        "synth:users=30,items=20,interactions=300",
        "--model",
        "popularity",
        "--baseline",
        "nope",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(!out.exists(), "wrote before checking --baseline");
    // A models file that is not TOML is a spec error; an unreadable one an I/O error.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[model]\nmodel = ").unwrap();
    let o = reco(&["eval", "--models", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = reco(&["eval", "--models", "/no/such/models.toml"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    // Data that cannot train a model is a data error: trending without timestamps.
    let csv = dir.path().join("r.csv");
    std::fs::write(&csv, "user,item,rating\nu1,i1,5\nu2,i2,3\nu1,i2,4\n").unwrap();
    let o = reco(&[
        "train",
        "--data",
        csv.to_str().unwrap(),
        "--model",
        r#"{"model":"popularity","weighting":"trending"}"#,
        "--out",
        dir.path().join("m").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
}

#[test]
fn renamed_parameters_still_work_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let art = dir.path().join("m");
    let o = reco(&[
        "train",
        "--data",
        "synth:users=100,items=50,interactions=2000,seed=2",
        "--model",
        r#"{"model":"svd","factors":4,"epochs":2,"lr":0.01}"#,
        "--out",
        art.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`lr` is now called `learning_rate`"),
        "{}",
        stderr(&o)
    );
    let manifest = std::fs::read_to_string(art.join("manifest.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(v["spec"]["learning_rate"], 0.01, "saved under the new name");
    let o = reco(&[
        "train",
        "--data",
        "synth:users=100,items=50,interactions=2000,seed=2",
        "--model",
        r#"{"model":"svd","lr":0.01,"learning_rate":0.02}"#,
        "--out",
        art.to_str().unwrap(),
    ]);
    assert!(!o.status.success() && stderr(&o).contains("give only `learning_rate`"));
    // A non-finite number in TOML is refused with its key, not taken as "absent".
    let file = dir.path().join("m.toml");
    std::fs::write(
        &file,
        "[[model]]\nmodel = \"svd\"\nlearning_rate_bu = nan\n",
    )
    .unwrap();
    let o = reco(&["eval", "--models", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("learning_rate_bu"), "{}", stderr(&o));
    let o = reco(&[
        "eval",
        "--data",
        "synth:users=30,items=20,interactions=300",
        "--model",
        "popularity",
        "--relevant-threshold",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--relevance-threshold"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn models_lists_every_kind_with_examples_that_parse() {
    let o = reco(&["models", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    for k in [
        "popularity",
        "svd",
        "lmf",
        "two-tower",
        "neural-cf",
        "pipeline",
        "switch",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    reco_neural::register().unwrap();
    reco_pipeline::register().unwrap();
    for k in v.as_array().unwrap() {
        let ex = k["examples"].as_array().unwrap();
        assert!(!ex.is_empty(), "{}", k["kind"]);
        // Every printed example is a spec `train --model` accepts as it is.
        for e in ex {
            let spec = reco_models::ModelSpec::from_value(e.clone())
                .unwrap_or_else(|err| panic!("{e}: {err}"));
            assert_eq!(spec.kind(), k["kind"].as_str().unwrap());
        }
    }
    // Capabilities that depend on parameters are listed if any example has them.
    let fm = v
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "fm")
        .unwrap();
    let caps: Vec<&str> = fm["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        caps.contains(&"ranks") && caps.contains(&"rates"),
        "{caps:?}"
    );
    let o = reco(&["models", "ease"]);
    assert!(
        stdout(&o).contains(r#""regularization":50.0"#),
        "{}",
        stdout(&o)
    );
}
