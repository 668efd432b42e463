//! `reco serve` as a process: the demo answers over a socket, and every acknowledged event
//! survives SIGKILL at a random moment (rounds of kill and restart on one SQLite file).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::{http, spawn};

#[test]
fn demo_answers_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = spawn(dir.path(), &["--demo"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while http(&p.addr, "GET", "/health/ready", None)
        .map(|r| r.0)
        .ok()
        != Some(200)
    {
        assert!(Instant::now() < deadline, "the demo never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = http(&p.addr, "GET", "/v1/recommend/2?n=5", None).expect("recommend");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(5));
    assert_eq!(v["model_version"], 1);
    assert!(dir.path().join("reco-demo.db").exists());
    p.child.kill().ok();
    p.child.wait().ok();
}

#[test]
fn acknowledged_events_survive_sigkill() {
    let rounds: usize = std::env::var("RECO_DURABILITY_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("events.db").display());
    let args = [
        "--database",
        db.as_str(),
        "--model",
        r#"{"model":"popularity"}"#,
    ];
    let mut acked_all: Vec<String> = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for round in 0..rounds {
        let p = spawn(dir.path(), &args);
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let (addr, acked, stop) = (p.addr.clone(), acked.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut k = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let user = format!("r{round}-t{t}-{k}");
                        let body = format!(
                            r#"{{"events":[{{"user":"{user}","item":"i{}","type":"view"}}]}}"#,
                            k % 50
                        );
                        match http(&addr, "POST", "/v1/feedback", Some(&body)) {
                            Ok((200, _)) => acked.lock().expect("lock").push(user),
                            Ok(_) | Err(_) => break,
                        }
                        k += 1;
                    }
                })
            })
            .collect();
        // Kill at a random moment between 0.2 and 1.2 s of load.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(200 + rng % 1000));
        let mut p = p;
        // SIGKILL: no shutdown, no flush beyond what each commit did.
        p.child.kill().expect("kill");
        p.child.wait().ok();
        stop.store(true, Ordering::Relaxed);
        for s in senders {
            s.join().ok();
        }
        let acked = std::mem::take(&mut *acked.lock().expect("lock"));
        assert!(
            !acked.is_empty(),
            "round {round}: no event was acknowledged"
        );
        acked_all.extend(acked);
    }
    let p = spawn(dir.path(), &args);
    let mut lost = Vec::new();
    for user in &acked_all {
        let (status, body) = http(&p.addr, "GET", &format!("/v1/users/{user}"), None).expect("get");
        if status != 200 || !body.contains(r#""events":1"#) {
            lost.push((user.clone(), status, body));
        }
    }
    drop(p);
    eprintln!(
        "durability: {} rounds, {} acknowledged events, {} lost",
        rounds,
        acked_all.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "acknowledged events lost: {:?}",
        &lost[..lost.len().min(5)]
    );
}
