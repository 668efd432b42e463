//! The HTML reports in a real browser: an evaluation's and a search's reports are written by
//! the binary, loaded by headless Chromium, and every figure must be in the rendered page with
//! its marks, and the screenshot must hold far more drawing than a blank page's.
//!
//! Chromium is found as $RECO_CHROMIUM, else `chromium`, `chromium-browser` or
//! `google-chrome` on the PATH; without it the browser half is skipped, unless
//! RECO_REQUIRE_CHROMIUM is set (CI sets it, and installs Debian's chromium).

use std::path::Path;
use std::process::Command;

mod common;
use common::{chromium, reco, stderr};

const DATA: &str = "synth:users=300,items=120,interactions=9000,seed=4";

fn headless(exe: &Path, profile: &Path) -> Command {
    let mut c = Command::new(exe);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1280,2400",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// The page as Chromium rendered it.
fn dom(exe: &Path, profile: &Path, page: &Path) -> String {
    let o = headless(exe, profile)
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A screenshot's PNG size in bytes, after checking its width and height.
fn screenshot(exe: &Path, profile: &Path, url: &str, png: &Path) -> usize {
    let o = headless(exe, profile)
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(png).expect("screenshot written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    assert_eq!((w, h), (1280, 2400));
    bytes.len()
}

/// The marks drawn inside figure `id` of a page.
fn marks(html: &str, id: &str) -> (usize, usize) {
    let start = html
        .find(&format!("<figure id=\"{id}\""))
        .unwrap_or_else(|| panic!("figure {id} missing"));
    let fig = &html[start..];
    let fig = &fig[..fig.find("</figure>").expect("figure ends")];
    (
        fig.matches("<circle").count(),
        fig.matches("<path d=\"M").count(),
    )
}

#[test]
fn the_evaluation_and_search_reports_render_with_every_figure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let eval_html = dir.path().join("eval.html");
    let o = reco(&[
        "eval",
        "--data",
        DATA,
        "--protocol",
        "holdout:0.2",
        "--model",
        "popularity",
        "--model",
        r#"{"model":"ials","factors":8,"epochs":4}"#,
        "--model",
        "random",
        "--k",
        "1,5,10,20",
        "--baseline",
        "popularity",
        "--report",
        eval_html.to_str().expect("path"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let tune = dir.path().join("tune.toml");
    std::fs::write(
        &tune,
        "trials = 6\nstrategy = \"random\"\n[model]\nmodel = \"ials\"\nepochs = 3\n[space]\n\
         factors = { int = [4, 32], log = true }\nconfidence = { choice = [\"linear\", \"log\"] }\n",
    )
    .expect("write");
    let out = dir.path().join("tune");
    let o = reco(&[
        "tune",
        "--data",
        DATA,
        "--space",
        tune.to_str().expect("path"),
        "--out",
        out.to_str().expect("path"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // `reco report` writes the same page from the saved result.
    let again = dir.path().join("again.html");
    let o = reco(&[
        "report",
        out.to_str().expect("path"),
        "--out",
        again.to_str().expect("path"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&again).expect("again"),
        std::fs::read(out.join("report.html")).expect("report")
    );
    let written = std::fs::read_to_string(&eval_html).expect("eval report");
    // Self-contained: no script, no file or address to fetch (the SVG namespace is a name).
    assert!(
        !written.contains("<script") && !written.contains("src=") && !written.contains("href=")
    );
    assert_eq!(
        written.matches("http").count(),
        written
            .matches("xmlns=\"http://www.w3.org/2000/svg\"")
            .count()
    );

    let Some(exe) = chromium() else {
        eprintln!("skipped the browser half: no chromium");
        return;
    };
    let profile = dir.path().join("profile");
    let page = dom(&exe, &profile, &eval_html);
    // Three models, four cutoffs: a line and four marks each on the curves over k.
    for id in ["ndcg-at-k", "recall-at-k", "precision-recall"] {
        let (circles, paths) = marks(&page, id);
        assert_eq!((circles, paths), (12, 3), "{id}");
    }
    for id in [
        "accuracy-vs-coverage",
        "accuracy-vs-novelty",
        "long-tail-exposure",
        "timings",
    ] {
        assert_eq!(marks(&page, id).0, 3, "{id}: one mark per model");
    }
    assert!(page.contains("id=\"comparison\""));
    assert!(
        page.contains("▲") || page.contains("▼"),
        "significance marks against the baseline"
    );
    let tune_page = dom(&exe, &profile, &out.join("report.html"));
    assert_eq!(marks(&tune_page, "trials").0, 6);
    assert_eq!(marks(&tune_page, "param-factors").0, 6);
    assert_eq!(marks(&tune_page, "param-confidence").0, 6);
    let blank = screenshot(&exe, &profile, "about:blank", &dir.path().join("blank.png"));
    let drawn = screenshot(
        &exe,
        &profile,
        &format!("file://{}", eval_html.display()),
        &dir.path().join("eval.png"),
    );
    assert!(
        drawn > 4 * blank,
        "the report's screenshot ({drawn} B) is not much more than a blank page's ({blank} B)"
    );
}
