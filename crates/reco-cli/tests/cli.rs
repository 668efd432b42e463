//! The `reco` binary end to end: the main job, the data path, and errors on malformed input.

use std::path::Path;

mod common;
use common::{reco, stderr, stdout};

#[test]
fn demo_prints_the_table_and_sample_recommendations() {
    let o = reco(&["demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "| popularity |",
        "precision@10",
        "recall@10",
        "Item_",
        "popularity recommendations (user=2)",
        "| two-tower |",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    let j = reco(&["demo", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).expect("demo --json is JSON");
    assert_eq!(
        v["report"]["users_evaluated"], 150,
        "30 users on each of 5 datasets"
    );
    // The lectures' lesson: every personalised model beats the random floor significantly,
    // and each is at least at the notebook's own precision@10 on its data.
    let notebook = [
        ("matrix-factorization", 0.047),
        ("two-tower", 0.050),
        ("item-knn", 0.033),
        ("user-knn", 0.0),
        ("content-tfidf", 0.0),
        ("covisitation", 0.0),
    ];
    let models = v["report"]["models"].as_array().expect("models");
    for (name, floor) in notebook {
        let m = models.iter().find(|m| m["name"] == name).expect(name);
        let p = m["metrics"]["precision@10"]["mean"]
            .as_f64()
            .expect("precision");
        assert!(
            p >= floor,
            "{name}: precision@10 {p} below the notebook's {floor}"
        );
        let t = &m["vs_baseline"]["precision@10"];
        assert!(
            t["p_value"].as_f64().expect("p") < 0.05 && t["diff"].as_f64().expect("diff") > 0.0,
            "{name} is not better than random: {t}"
        );
    }
}

fn write(dir: &Path, name: &str, text: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn malformed_inputs_fail_with_the_place_at_fault() {
    let d = tempfile::tempdir().unwrap();
    let items = write(d.path(), "items.csv", b"item,title\nz,Zed\n");
    let cases: Vec<(Vec<String>, &str, &[&str])> = vec![
        (
            vec![],
            "user,item,rating\n1,a,4\n2,b,abc\n",
            &[":3:", "column rating", "not a number", "\"abc\""],
        ),
        (
            vec![],
            "user,item,rating\n1,a,NaN\n",
            &[":2:", "not a finite number"],
        ),
        (
            vec![],
            "user,item,rating\n1,a\n",
            &[":2:", "row has 2 fields"],
        ),
        (vec![], "", &["no data rows"]),
        (
            vec!["--rating-col".into(), "score".into()],
            "user,item,rating\n1,a,4\n",
            &["column \"score\" not found", "user, item, rating"],
        ),
        (
            vec!["--items".into(), items.clone()],
            "user,item,rating\n1,a,4\n",
            &["items.csv:2", "unknown item id \"z\""],
        ),
        (
            vec![],
            "user,item,rating\n1,\"a,4\n",
            &[":2:", "unterminated quoted field"],
        ),
        (
            vec![],
            "user,item,rating,timestamp\n1,a,4,yesterday\n",
            &[":2:", "column timestamp", "timestamp"],
        ),
        (vec![], "user,item,rating\n,a,4\n", &[":2:", "empty id"]),
        (
            vec!["--event-weights".into(), "view=1".into()],
            "user,item,event\n1,a,buy\n",
            &[":2:", "column event", "event type has no weight", "\"buy\""],
        ),
        (
            vec!["--duplicates".into(), "median".into()],
            "user,item\n1,a\n",
            &["duplicates", "last, first, sum, max, mean"],
        ),
    ];
    for (k, (extra, text, needles)) in cases.iter().enumerate() {
        let file = write(d.path(), &format!("case{k}.csv"), text.as_bytes());
        let mut args = vec!["data", "inspect", "--data", &file];
        args.extend(extra.iter().map(String::as_str));
        let o = reco(&args);
        assert!(!o.status.success(), "case {k} should fail");
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "case {k} panicked: {err}");
        for n in *needles {
            assert!(err.contains(n), "case {k}: {n:?} not in {err}");
        }
    }
    let o = reco(&["data", "inspect", "--data", "/no/such/file.csv"]);
    assert!(!o.status.success() && stderr(&o).contains("/no/such/file.csv"));
    let o = reco(&["eval", "--protocol", "kfold:1"]);
    assert!(!o.status.success() && stderr(&o).contains("kfold needs an integer k >= 2"));
}

#[test]
fn delimited_data_with_item_user_and_session_files() {
    let d = tempfile::tempdir().unwrap();
    let r = write(
        d.path(),
        "r.tsv",
        b"u\ti\tscore\na\tx\t4\nb\ty\t2\na\ty\t5\n",
    );
    let items = write(d.path(), "items.tsv", b"id\tname\tgenres\tyear\nx\tFilm X\tDrama|War\t1999\ny\tFilm Y\tComedy\t\nw\tCold one\tDrama\t2001\n");
    let users = write(
        d.path(),
        "users.tsv",
        b"id\tcountry\tage\na\tDE\t31\nb\tFR\t40\n",
    );
    let sess = write(
        d.path(),
        "s.tsv",
        b"session\titem\tposition\ns1\ty\t2\ns1\tx\t1\n",
    );
    let o = reco(&[
        "data",
        "inspect",
        "--json",
        "--data",
        &r,
        "--delimiter",
        "tab",
        "--user-col",
        "u",
        "--item-col",
        "i",
        "--rating-col",
        "score",
        "--items",
        &items,
        "--title-col",
        "name",
        "--category-col",
        "genres:|",
        "--numeric-col",
        "year",
        "--unknown-ids",
        "add",
        "--users",
        &users,
        "--user-category-col",
        "country",
        "--user-numeric-col",
        "age",
        "--sessions",
        &sess,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["items"], 3, "the cold catalogue item is added");
    assert_eq!(v["interactions"], 3);
    assert_eq!(v["sessions"], 1);
    let fields = v["item_metadata_fields"].to_string();
    assert!(
        fields.contains("genres (categorical)") && fields.contains("year (numeric)"),
        "{fields}"
    );
    assert!(v["user_metadata_fields"]
        .to_string()
        .contains("age (numeric)"));
}

#[test]
fn guesses_columns_and_rejects_impossible_requests() {
    let d = tempfile::tempdir().unwrap();
    let inspect = |file: &str, extra: &[&str]| {
        let mut args = vec!["data", "inspect", "--json", "--data", file];
        args.extend(extra);
        reco(&args)
    };
    // A header-less three-column file has no timestamp column.
    let f = write(d.path(), "three.csv", b"1,a,4\n2,b,5\n");
    let o = inspect(&f, &["--no-header"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["feedback"], "explicit");
    assert!(v["min_timestamp"].is_null());
    // Naming one column keeps the header's guess for the others (the rating here).
    let f = write(
        d.path(),
        "events.csv",
        b"user,item,rating,event\n1,a,2,buy\n1,b,4,view\n",
    );
    let o = inspect(
        &f,
        &["--event-col", "event", "--event-weights", "view=1,buy=3"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["rating_histogram"][0][0], 4.0,
        "2 × buy weight 3 = 6 and 4 × view weight 1 = 4"
    );
    // A threshold needs ratings.
    let f = write(d.path(), "implicit.csv", b"user,item\n1,a\n");
    let o = inspect(&f, &["--threshold", "4"]);
    assert!(
        !o.status.success() && stderr(&o).contains("no rating column"),
        "{}",
        stderr(&o)
    );
    // An unterminated quote is a bad row like others.
    let f = write(d.path(), "quote.csv", b"user,item\n1,\"a\n2,b\n");
    let o = inspect(&f, &["--skip-bad-rows"]);
    assert!(
        o.status.success() && stderr(&o).contains("skipped 1 malformed rows"),
        "{}",
        stderr(&o)
    );
    // More folds than interactions.
    let o = reco(&[
        "eval",
        "--data",
        "synth:notebook",
        "--protocol",
        "kfold:100000",
    ]);
    assert!(!o.status.success() && stderr(&o).contains("needs at least 100000 interactions"));
    // A typo in synthetic parameters is an error, not a default.
    let o = reco(&["data", "inspect", "--data", "synth:user=50"]);
    assert!(
        !o.status.success() && stderr(&o).contains("unknown field"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn skip_bad_rows_reports_what_it_skipped() {
    let d = tempfile::tempdir().unwrap();
    let f = write(
        d.path(),
        "r.csv",
        b"user,item,rating\n1,a,4\n2,b,x\n3,c,inf\n4,d,5\n",
    );
    let o = reco(&["data", "inspect", "--data", &f, "--skip-bad-rows", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("skipped 2 malformed rows"));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["interactions"], 2);
    assert_eq!(v["report"]["skipped_rows"], 2);
}

#[test]
fn split_train_recommend_and_eval_on_files_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let p = |s: &str| d.path().join(s).to_string_lossy().into_owned();
    let data = "synth:users=200,items=80,interactions=3000,seed=5";
    let o = reco(&[
        "data",
        "split",
        "--data",
        data,
        "--protocol",
        "temporal:0.2",
        "--out",
        &p("split"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = reco(&[
        "eval",
        "--train",
        &p("split/train.csv"),
        "--test",
        &p("split/test.csv"),
        "--model",
        "popularity",
        "--model",
        "random",
        "--k",
        "10",
        "--out",
        &p("eval"),
        "--baseline",
        "random",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("eval/results.json")).unwrap()).unwrap();
    let pop = &r["models"][0]["metrics"];
    let rnd = &r["models"][1]["metrics"];
    assert!(
        pop["recall@10"]["mean"].as_f64().unwrap() > rnd["recall@10"]["mean"].as_f64().unwrap()
    );
    assert!(Path::new(&p("eval/runs/popularity.fold0.run")).exists());
    assert!(Path::new(&p("eval/qrels.fold0.txt")).exists());

    let o = reco(&[
        "train",
        "--data",
        data,
        "--model",
        "{\"model\":\"popularity\",\"weighting\":\"trending\"}",
        "--out",
        &p("model"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = reco(&[
        "recommend",
        "--model",
        &p("model"),
        "--user",
        "u3",
        "-k",
        "5",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["recommendations"].as_array().unwrap().len(), 5);
    assert!(v["recommendations"][0]["title"]
        .as_str()
        .unwrap()
        .starts_with("Item "));

    let o = reco(&[
        "train",
        "--data",
        data,
        "--model",
        "{\"model\":\"item-knn\",\"similarity\":\"vector-cosine\"}",
        "--out",
        &p("knn"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = reco(&[
        "similar",
        "--model",
        &p("knn"),
        "--item",
        "i3",
        "-k",
        "4",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sims = v["similar"].as_array().unwrap();
    assert_eq!(sims.len(), 4);
    assert!(
        sims.iter().all(|s| s["item"] != "i3"),
        "an item is not similar to itself"
    );
    let o = reco(&["similar", "--model", &p("model"), "--item", "i3"]);
    assert!(!o.status.success() && stderr(&o).contains("does not find similar items"));

    std::fs::write(d.path().join("model/model.bin"), b"tampered").unwrap();
    let o = reco(&["recommend", "--model", &p("model"), "--user", "u3"]);
    assert!(!o.status.success() && stderr(&o).contains("checksum mismatch"));
    assert_eq!(o.status.code(), Some(6), "artifact errors exit with 6");
}

#[test]
fn neural_models_train_save_recommend_and_export_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let art = dir.path().join("tt");
    let data = "synth:users=200,items=150,interactions=4000,seed=3";
    let o = reco(&[
        "train",
        "--data",
        data,
        "--model",
        r#"{"model":"two-tower","epochs":2,"layers":[16],"embedding_dim":8}"#,
        "--validation",
        "0.1",
        "--out",
        art.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        art.join("model.safetensors").exists(),
        "neural state is a safetensors file"
    );
    let r = reco(&[
        "recommend",
        "--model",
        art.to_str().unwrap(),
        "--user",
        "7",
        "-k",
        "5",
        "--json",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["recommendations"].as_array().map(Vec::len), Some(5));
    let out = dir.path().join("vec");
    let e = reco(&[
        "export-vectors",
        "--model",
        art.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(e.status.success(), "{}", stderr(&e));
    let items = std::fs::read_to_string(out.join("items.tsv")).unwrap();
    let first = items.lines().next().unwrap();
    // An id, then 16 numbers (the last layer's width).
    assert_eq!(first.split('\t').count(), 17, "{first}");
    assert!(first.split('\t').skip(1).all(|x| x.parse::<f32>().is_ok()));
    // Unknown parameters of a neural kind are refused with the field's name.
    let bad = reco(&[
        "eval",
        "--data",
        data,
        "--model",
        r#"{"model":"two-tower","towers":3}"#,
    ]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("towers"), "{}", stderr(&bad));
    // A model without vectors cannot be exported.
    let pop = dir.path().join("pop");
    assert!(reco(&[
        "train",
        "--data",
        data,
        "--model",
        "popularity",
        "--out",
        pop.to_str().unwrap()
    ])
    .status
    .success());
    let e = reco(&[
        "export-vectors",
        "--model",
        pop.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!e.status.success());
    assert!(
        stderr(&e).contains("no user and item vectors"),
        "{}",
        stderr(&e)
    );
}

#[test]
fn a_neural_fit_stopped_by_ctrl_c_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let data = "synth:users=300,items=200,interactions=12000,seed=5";
    // Enough epochs that the stop lands long before the end.
    let model = r#"{"model":"two-tower","epochs":150,"layers":[16],"embedding_dim":8}"#;
    let train = |out: &Path, checkpoint: Option<&Path>| {
        let mut args = vec![
            "train".to_string(),
            "--data".into(),
            data.into(),
            "--model".into(),
            model.into(),
            "--validation".into(),
            "0.1".into(),
            "--out".into(),
            out.display().to_string(),
        ];
        if let Some(c) = checkpoint {
            args.extend(["--checkpoint".to_string(), c.display().to_string()]);
        }
        args
    };
    let args = train(&dir.path().join("resumed"), Some(&ck));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_reco"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let file = ck.join("checkpoint.safetensors");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(file.exists(), "no checkpoint after the first epoch");
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let o = child.wait_with_output().unwrap();
    assert!(
        !o.status.success(),
        "the fit ended before the stop reached it"
    );
    assert!(
        stderr(&o).contains("run the same command to resume"),
        "{}",
        stderr(&o)
    );
    assert!(file.exists(), "the stopped fit keeps its checkpoint");
    assert!(
        !dir.path().join("resumed").exists(),
        "no artifact from a stopped fit"
    );

    let o = reco(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("resuming from the checkpoint"),
        "{}",
        stderr(&o)
    );
    assert!(
        !file.exists(),
        "the checkpoint goes once the model is saved"
    );
    // The resumed fit is the fit that was never stopped.
    let whole = train(&dir.path().join("whole"), None);
    let o = reco(&whole.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    // Compared by their vectors: the safetensors header's key order varies from run to run.
    let vectors = |d: &str| {
        let out = dir.path().join(format!("{d}.vectors"));
        let e = reco(&[
            "export-vectors",
            "--model",
            dir.path().join(d).to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(e.status.success(), "{}", stderr(&e));
        ["users.tsv", "items.tsv"].map(|f| std::fs::read_to_string(out.join(f)).unwrap())
    };
    assert!(
        vectors("resumed") == vectors("whole"),
        "resumed and whole fits differ"
    );

    // Models that fit in one go have nothing to resume.
    let o = reco(&[
        "train",
        "--data",
        data,
        "--model",
        "als",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--out",
        dir.path().join("als").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("checkpoint") && stderr(&o).contains("two-tower"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn pipelines_audits_and_explanations_through_the_cli() {
    let data = "synth:users=200,items=150,interactions=4000,seed=3";
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/pipeline.toml");
    let o = reco(&[
        "pipeline",
        "--config",
        config,
        "--data",
        data,
        "--protocol",
        "temporal:0.2",
        "--k",
        "10",
        "--no-auc",
        "--model",
        "popularity",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, ["popularity", "pipeline"]);

    let dir = tempfile::tempdir().unwrap();
    let art = dir.path().join("knn");
    let t = reco(&[
        "train",
        "--data",
        data,
        "--model",
        r#"{"model":"ials","factors":8,"epochs":3}"#,
        "--out",
        art.to_str().unwrap(),
    ]);
    assert!(t.status.success(), "{}", stderr(&t));
    let r = reco(&[
        "recommend",
        "--model",
        art.to_str().unwrap(),
        "--user",
        "u7",
        "-k",
        "3",
        "--explain",
        "--json",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let first = &v["recommendations"][0];
    assert!(
        first["why"].as_array().is_some_and(|w| w
            .iter()
            .any(|x| x.as_str().unwrap_or("").starts_with("because you liked"))),
        "{first}"
    );

    let a = reco(&[
        "audit",
        "--data",
        data,
        "--model",
        "popularity",
        "--by",
        "country",
        "--reweight",
        "0.5",
        "--json",
    ]);
    assert!(a.status.success(), "{}", stderr(&a));
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let slots: f64 = v["popularity"]["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["slots"].as_f64().unwrap())
        .sum();
    assert!((slots - 1.0).abs() < 1e-9);
    assert!(!v["popularity"]["by_group"].as_array().unwrap().is_empty());
    let bad = reco(&["audit", "--data", data, "--by", "shoe_size"]);
    assert!(!bad.status.success() && stderr(&bad).contains("shoe_size"));
}
