//! The dashboard in a real browser: `reco serve` runs with the demo data, two model versions,
//! an experiment between them and a few dozen lists with clicks; headless Chromium, driven over
//! WebDriver by Debian's chromedriver, loads `/dashboard`, opens the experiment, looks a user
//! up, and the rendered page must show what the API holds. Screenshots at laptop and phone
//! widths are written to `target/tmp/` (and to $RECO_SCREENSHOT_DIR when set).
//!
//! chromedriver is $RECO_CHROMEDRIVER or `chromedriver` on the PATH; without it or chromium the
//! test is skipped, unless RECO_REQUIRE_CHROMIUM is set (CI sets it and installs both).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{chromium, http, spawn};

fn chromedriver() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("RECO_CHROMEDRIVER") {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("chromedriver"))
            .find(|p| p.is_file())
    });
    assert!(
        found.is_some() || std::env::var_os("RECO_REQUIRE_CHROMIUM").is_none(),
        "RECO_REQUIRE_CHROMIUM is set but no chromedriver was found"
    );
    found
}

/// A JSON call to the server; panics unless it answers 200.
fn call(addr: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string());
    let (status, text) = http(addr, method, path, body.as_deref()).expect("request");
    assert_eq!(status, 200, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A WebDriver session on a chromedriver process.
struct Driver {
    child: Child,
    addr: String,
    session: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    fn start(driver: &Path, chromium: &Path, profile: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http(&addr, "GET", "/status", None)
            .is_ok_and(|(s, b)| s == 200 && b.contains("\"ready\":true"))
        {
            assert!(Instant::now() < deadline, "chromedriver never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut d = Driver {
            child,
            addr,
            session: String::new(),
        };
        // The flags a closed network needs: no background connections, no QUIC.
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.display()),
                    "--window-size=1280,2200"
                ]
            }
        }}});
        let v = d.post("/session", caps);
        d.session = v["sessionId"].as_str().expect("session id").to_string();
        d
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let (status, text) =
            http(&self.addr, method, path, body.as_deref()).expect("WebDriver request");
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, v["value"].clone())
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.raw("POST", path, Some(body));
        assert_eq!(status, 200, "POST {path}: {v}");
        v
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn goto(&self, url: &str) {
        self.post(&self.at("/url"), json!({ "url": url }));
    }

    /// Runs a script in the page; its return value.
    fn js(&self, script: &str) -> Value {
        self.post(
            &self.at("/execute/sync"),
            json!({"script": script, "args": []}),
        )
    }

    /// Waits until `script` returns true, with what it last returned on failure.
    fn wait(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.js(script);
            if v == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: still not true after 30 s ({v}); page: {}",
                self.js("return document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn element(&self, css: &str) -> String {
        let v = self.post(
            &self.at("/element"),
            json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT].as_str().expect("element id").to_string()
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.post(&self.at(&format!("/element/{e}/click")), json!({}));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.post(
            &self.at(&format!("/element/{e}/value")),
            json!({ "text": text }),
        );
    }

    fn text(&self, css: &str) -> String {
        let e = self.element(css);
        let (status, v) = self.raw("GET", &self.at(&format!("/element/{e}/text")), None);
        assert_eq!(status, 200, "{v}");
        v.as_str().unwrap_or_default().to_string()
    }

    /// Asserts that the text of the element at `css` contains `needle`.
    fn shows(&self, css: &str, needle: &str) {
        let text = self.text(css);
        assert!(text.contains(needle), "{css} lacks {needle:?}: {text}");
    }

    fn resize(&self, width: u32, height: u32) {
        self.post(
            &self.at("/window/rect"),
            json!({"width": width, "height": height}),
        );
    }

    /// A PNG of the viewport, written to `path`; its size in bytes.
    fn screenshot(&self, path: &Path) -> usize {
        let (status, v) = self.raw("GET", &self.at("/screenshot"), None);
        assert_eq!(status, 200, "{v}");
        let png = base64(v.as_str().expect("base64"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, &png).expect("write screenshot");
        png.len()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(&self.addr, "DELETE", &self.at(""), None);
        }
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Standard base64 (WebDriver's screenshots).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits: Vec<u32> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for (k, d) in chunk.iter().enumerate() {
            acc |= d << (18 - 6 * k);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_by_hand() {
    assert_eq!(base64("TWFu"), b"Man");
    assert_eq!(base64("TWE="), b"Ma");
    assert_eq!(base64("TQ=="), b"M");
    assert_eq!(base64("iVBORw0K"), b"\x89PNG\r\n");
}

#[test]
fn the_dashboard_shows_the_servers_state_in_a_browser() {
    let (Some(chrome), Some(driver)) = (chromium(), chromedriver()) else {
        eprintln!("skipped: no chromium or chromedriver");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("serve.toml");
    // Alerts with thresholds the traffic below crosses (CTR under 90%) and does not (head
    // exposure over 100% cannot happen), so the page shows one of each.
    std::fs::write(
        &config,
        "database = \"sqlite://dashboard.db\"\n\
         [experiments]\ncheck_seconds = 0\n\
         [monitoring]\ncheck_seconds = 0\nmin_impressions = 10\nmin_ctr = 0.9\nmax_head_exposure = 1.0\n",
    )
    .expect("config");
    let p = spawn(
        dir.path(),
        &["--demo", "--config", config.to_str().expect("path")],
    );
    let addr = p.addr.clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    while http(&addr, "GET", "/health/ready", None).map(|r| r.0).ok() != Some(200) {
        assert!(Instant::now() < deadline, "the server never became ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    call(&addr, "POST", "/v1/models/retrain", None);
    call(
        &addr,
        "POST",
        "/v1/experiments",
        Some(json!({"name": "new-vs-old", "arms": [
            {"name": "control", "version": 1}, {"name": "candidate", "version": 2}]})),
    );
    // Sixty lists; two users in three click the first item.
    let mut clicks = 0;
    for u in 0..60 {
        let v = call(&addr, "GET", &format!("/v1/recommend/{u}?n=5"), None);
        if u % 3 != 0 {
            let event = json!({"events": [{"user": u.to_string(), "item": v["items"][0]["id"],
                "type": "click", "recommendation": v["id"]}]});
            call(&addr, "POST", "/v1/feedback", Some(event));
            clicks += 1;
        }
    }
    let stats = call(&addr, "GET", "/v1/impressions/stats", None);
    assert_eq!(stats["impressions"], 60, "{stats}");
    assert_eq!(stats["overall"]["successes"], clicks, "{stats}");

    let profile = dir.path().join("profile");
    let b = Driver::start(&driver, &chrome, &profile);
    b.goto(&format!("http://{addr}/dashboard"));
    b.wait(
        "two model versions listed",
        "return document.querySelectorAll('#models-table tbody tr').length === 2",
    );
    b.shows("#status", "version 2");
    // The latest window: 60 lists, 40 with a click; the CTR alert fires, head exposure's not.
    b.wait(
        "the quality panel",
        "return !!document.querySelector('#alerts .alert[data-alert=ctr]')",
    );
    b.shows("#alerts", "60 lists");
    b.shows("#alerts", "CTR 66.7%");
    assert_eq!(
        b.js("return [...document.querySelectorAll('#alerts .alert.firing')].map(a => a.dataset.alert)"),
        json!(["ctr"])
    );
    // The charts are drawn: a line with marks over time, stacked exposure, groups with bars.
    assert_eq!(
        b.js("return document.querySelectorAll('#ctr-chart polyline.line').length"),
        json!(1)
    );
    assert!(
        b.js("return document.querySelectorAll('#ctr-chart circle.dot').length")
            .as_u64()
            .is_some_and(|n| n >= 1),
        "no CTR marks"
    );
    assert!(
        b.js("return document.querySelectorAll('#exposure-chart rect').length")
            .as_u64()
            .is_some_and(|n| n >= 1),
        "no exposure bars"
    );
    // The experiment: both arms, their lists adding up to the sixty served.
    b.wait(
        "the experiment listed",
        "return !!document.querySelector('tr[data-experiment=\"new-vs-old\"]')",
    );
    b.click("tr[data-experiment=\"new-vs-old\"]");
    b.wait(
        "the arms' results",
        "return document.querySelectorAll('#arms-table tbody tr').length === 2",
    );
    let lists = b.js(
        "return [...document.querySelectorAll('#arms-table tbody tr')]\
         .map(r => Number(r.children[2].textContent)).reduce((a, b) => a + b, 0)",
    );
    assert_eq!(lists, json!(60));
    b.shows("tr[data-arm=candidate]", "%");
    b.shows("#experiment-detail", "ndcg@10");
    // Drift: a verdict for the active version.
    b.wait(
        "the drift panel",
        "return !!document.querySelector('#stale')",
    );
    // The user lookup: profile, history, ten recommendations; a preview, so not logged.
    b.type_into("#user-id", "3");
    b.click("#user-form button");
    b.wait(
        "the user's recommendations",
        "return document.querySelectorAll('#user-recommendations li').length === 10",
    );
    assert!(
        b.js("return document.querySelectorAll('#user-history li').length")
            .as_u64()
            .is_some_and(|n| n >= 1),
        "no history"
    );
    b.shows("#user", "in model");
    let stats = call(&addr, "GET", "/v1/impressions/stats", None);
    assert_eq!(
        stats["impressions"], 60,
        "previews are not impressions: {stats}"
    );

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let laptop = b.screenshot(&out.join("dashboard-laptop.png"));
    // At a phone's width nothing is wider than the screen.
    b.resize(390, 844);
    b.wait(
        "no horizontal overflow at 390 px",
        "return document.documentElement.scrollWidth <= window.innerWidth",
    );
    let phone = b.screenshot(&out.join("dashboard-phone.png"));
    assert!(
        laptop > 50_000 && phone > 20_000,
        "screenshots of {laptop} and {phone} bytes are too small to hold the panels"
    );
    if let Some(d) = std::env::var_os("RECO_SCREENSHOT_DIR") {
        let d = Path::new(&d);
        std::fs::create_dir_all(d)
            .unwrap_or_else(|e| panic!("screenshot directory {}: {e}", d.display()));
        for name in ["dashboard-laptop.png", "dashboard-phone.png"] {
            std::fs::copy(out.join(name), d.join(name))
                .unwrap_or_else(|e| panic!("copy {name} to {}: {e}", d.display()));
        }
    }
}
