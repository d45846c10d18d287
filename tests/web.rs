//! The web UI over HTTP, as the page uses it: a test started, steered, reset and stopped
//! against the demo API (which counts what it serves), and the guards on every change.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stampede::cli::RunFlags;
use stampede::web::{Script, Session, WebConfig, WebServer};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The web UI on a free loopback port, for the demo's scenario.
fn web_ui(demo: &str, auth: Option<&str>) -> WebServer {
    let script = Script::Inline {
        name: stampede::demo::CITIES_SCRIPT_NAME.into(),
        source: stampede::demo::CITIES_SCRIPT.into(),
    };
    ui_for(script, demo, auth)
}

/// The web UI for `script`, aimed at `host`.
fn ui_for(script: Script, host: &str, auth: Option<&str>) -> WebServer {
    let flags = RunFlags {
        host: Some(host.to_owned()),
        ..RunFlags::default()
    };
    let config = WebConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        auth: auth.map(str::to_owned),
    };
    stampede::web::spawn(Session::new(script, flags).unwrap(), &config).unwrap()
}

fn inline(name: &str, source: &str) -> Script {
    Script::Inline {
        name: name.into(),
        source: source.into(),
    }
}

fn text(url: &str) -> String {
    runtime().block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

fn get(url: &str) -> Value {
    runtime().block_on(async {
        reqwest::get(url)
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

/// POSTs JSON as the page does; returns the status and the answer.
fn post(url: &str, body: Value, headers: &[(&str, &str)]) -> (u16, String) {
    runtime().block_on(async {
        let mut request = reqwest::Client::new().post(url).json(&body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let r = request.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

/// Polls the UI's state until `done` holds (at most 20 s).
fn wait_for(ui: &WebServer, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = get(&format!("{}/api/state", ui.url()));
        if done(&state) {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {state}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn served(demo: &stampede::demo::DemoServer, key: &str) -> u64 {
    demo.stats.snapshot().get(key).copied().unwrap_or(0)
}

fn row<'a>(state: &'a Value, name: &str) -> Option<&'a Value> {
    state["rows"].as_array()?.iter().find(|r| r["name"] == name)
}

#[test]
fn a_test_is_started_steered_reset_and_stopped_and_the_server_sees_it() {
    let demo = stampede::demo::spawn(0, true).unwrap();
    let ui = web_ui(&demo.url(), None);
    let state = get(&format!("{}/api/state", ui.url()));
    assert_eq!(state["status"], "ready");
    assert_eq!(
        state["defaults"]["host"],
        demo.url(),
        "prefilled from the flags"
    );

    let start = json!({ "users": 6, "spawn_rate": 100, "host": "", "run_time_s": null });
    let (status, body) = post(&format!("{}/api/start", ui.url()), start.clone(), &[]);
    assert_eq!(status, 200, "{body}");
    let (status, _) = post(&format!("{}/api/start", ui.url()), start, &[]);
    assert_eq!(status, 409, "one test at a time");

    // The race shows up as failed read-backs, as in the seed story.
    let state = wait_for(&ui, "read-back failures", |s| {
        row(s, "/cities/[id]").is_some_and(|r| r["failures"].as_u64() > Some(0))
    });
    assert_eq!(state["status"], "running");
    assert_eq!(
        served(&demo, "POST /auth/register"),
        6,
        "six users registered"
    );

    // More users mid-run: the server sees the new ones register.
    let edit = json!({ "users": 9, "spawn_rate": 100 });
    let (status, body) = post(&format!("{}/api/edit", ui.url()), edit, &[]);
    assert_eq!(status, 200, "{body}");
    wait_for(&ui, "nine users", |s| s["users"] == 9);
    assert_eq!(served(&demo, "POST /auth/register"), 9);

    // Fewer: the level follows.
    let edit = json!({ "users": 1, "spawn_rate": 100 });
    assert_eq!(post(&format!("{}/api/edit", ui.url()), edit, &[]).0, 200);
    wait_for(&ui, "one user", |s| s["users"] == 1);

    // Reset: the statistics start afresh, the test goes on.
    let before = wait_for(&ui, "some requests", |s| {
        row(s, "Aggregated").is_some_and(|r| r["requests"].as_u64() > Some(20))
    });
    let before = row(&before, "Aggregated").unwrap()["requests"]
        .as_u64()
        .unwrap();
    assert_eq!(
        post(&format!("{}/api/reset", ui.url()), json!({}), &[]).0,
        200
    );
    wait_for(&ui, "statistics reset", |s| {
        row(s, "Aggregated").is_some_and(|r| r["requests"].as_u64() < Some(before))
            && s["status"] == "running"
    });

    assert_eq!(
        post(&format!("{}/api/stop", ui.url()), json!({}), &[]).0,
        200
    );
    let state = wait_for(&ui, "the test to stop", |s| s["status"] == "stopped");
    assert_eq!(state["users"], 0);

    // The result counts from the reset on: less than the server served, and the sum of
    // its own seconds.
    let report = get(&format!("{}/api/download/json", ui.url()));
    assert_eq!(report["schema"], "stampede-result");
    let requests = report["aggregated"]["requests"].as_u64().unwrap();
    let seconds: u64 = report["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, seconds);
    let served_total: u64 = demo.stats.snapshot().values().sum();
    assert!(
        requests > 0 && requests < served_total,
        "{requests} of {served_total}"
    );
    ui.stop();
}

#[test]
fn the_report_of_a_test_matches_the_servers_own_count() {
    let demo = stampede::demo::spawn(0, false).unwrap();
    let ui = web_ui(&demo.url(), None);
    let start = json!({ "users": 3, "spawn_rate": 100, "host": demo.url(), "run_time_s": 2 });
    assert_eq!(post(&format!("{}/api/start", ui.url()), start, &[]).0, 200);
    wait_for(&ui, "the run time to end the test", |s| {
        s["status"] == "stopped"
    });
    let report = get(&format!("{}/api/download/json", ui.url()));
    let served_total: u64 = demo.stats.snapshot().values().sum();
    assert_eq!(
        report["aggregated"]["requests"].as_u64().unwrap(),
        served_total,
        "the tool's count is the server's"
    );
    assert_eq!(report["aggregated"]["failures"], 0);
    let history = get(&format!("{}/api/history", ui.url()));
    let charted: u64 = history
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        charted, served_total,
        "the chart's seconds add up to the whole"
    );
    let csv = text(&format!("{}/api/download/csv-stats", ui.url()));
    assert!(csv.starts_with("method,name,requests"), "{csv}");
    ui.stop();
}

#[test]
fn changes_need_same_origin_json_and_the_login_when_one_is_set() {
    let demo = stampede::demo::spawn(0, false).unwrap();
    let ui = web_ui(&demo.url(), None);
    let stop = format!("{}/api/stop", ui.url());
    // A cross-site form post cannot send JSON; a cross-origin fetch is refused.
    let form = runtime().block_on(async {
        reqwest::Client::new()
            .post(&stop)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("x=1")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(form, 403);
    let foreign = post(&stop, json!({}), &[("origin", "http://evil.example")]);
    assert_eq!(foreign.0, 403, "{}", foreign.1);
    let cross_site = post(&stop, json!({}), &[("sec-fetch-site", "cross-site")]);
    assert_eq!(cross_site.0, 403);
    let own = format!("http://{}", ui.addr);
    assert_eq!(
        post(&stop, json!({}), &[("origin", &own)]).0,
        409,
        "allowed; nothing runs"
    );
    ui.stop();

    let ui = web_ui(&demo.url(), Some("admin:s3cret"));
    let page = runtime().block_on(async { reqwest::get(ui.url()).await.unwrap().status() });
    assert_eq!(page.as_u16(), 401);
    let login = runtime().block_on(async {
        reqwest::Client::new()
            .get(format!("{}/api/state", ui.url()))
            .basic_auth("admin", Some("s3cret"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(login, 200);
    ui.stop();
}

#[test]
fn the_page_writes_text_from_the_target_as_text() {
    // Every string from the target or the script reaches the page as JSON and is written
    // with textContent; the script has no other way to put text into the document.
    let demo = stampede::demo::spawn(0, false).unwrap();
    let ui = web_ui(&demo.url(), None);
    let script = text(&format!("{}/app.js", ui.url()));
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
    ] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
    assert!(script.contains("textContent"));
    let csp = runtime().block_on(async {
        reqwest::get(ui.url()).await.unwrap().headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned()
    });
    assert!(csp.contains("default-src 'self'"), "{csp}");
    ui.stop();
}

#[test]
fn a_script_with_scenarios_runs_the_ones_chosen_as_written() {
    let demo = stampede::demo::spawn(0, false).unwrap();
    let source = r#"
const options = #{ scenarios: #{
    browse: #{ executor: "constant-vus", users: 2, duration: "30s", exec: "browse" },
    health: #{ executor: "constant-arrival-rate", rate: 20, duration: "30s",
               pre_allocated_users: 2, exec: "health" },
} };
fn browse() { http::get("/cities"); sleep(0.05); }
fn health() { http::get("/health"); }
"#;
    let ui = ui_for(inline("scenarios.rhai", source), &demo.url(), None);
    let state = get(&format!("{}/api/state", ui.url()));
    let offered: Vec<&str> = state["scenarios_offered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["browse", "health"]);

    let unknown = json!({ "users": 1, "spawn_rate": 1, "host": "", "run_time_s": 2,
                          "scenarios": ["nope"] });
    let (status, body) = post(&format!("{}/api/start", ui.url()), unknown, &[]);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("no scenario `nope`"), "{body}");

    let start = json!({ "users": 1, "spawn_rate": 1, "host": "", "run_time_s": 3,
                        "scenarios": ["health"] });
    assert_eq!(post(&format!("{}/api/start", ui.url()), start, &[]).0, 200);
    let running = wait_for(&ui, "the scenario's line", |s| {
        s["scenarios"].as_array().is_some_and(|a| !a.is_empty()) && s["status"] == "running"
    });
    let lines = running["scenarios"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["name"], "health");
    assert_eq!(lines[0]["target_rate"], 20.0);
    let edit = json!({ "users": 5, "spawn_rate": 5 });
    assert_eq!(
        post(&format!("{}/api/edit", ui.url()), edit, &[]).0,
        409,
        "not steered"
    );
    wait_for(&ui, "the run time to end it", |s| s["status"] == "stopped");
    let served = demo.stats.snapshot();
    assert_eq!(served.get("GET /cities"), None, "browse was not chosen");
    let health = served["GET /health"];
    assert!((40..=70).contains(&health), "about 20/s for 3 s: {health}");
    ui.stop();
}

#[test]
fn an_arrival_rate_is_started_and_changed_while_it_runs() {
    let demo = stampede::demo::spawn(0, false).unwrap();
    // Options that a rate flag would conflict with: the form wins over them.
    let source = "const options = #{ users: 5, spawn_rate: 1, run_time: \"1m\" };\n\
                  fn t() { http::get(\"/health\"); }\n";
    let ui = ui_for(inline("health.rhai", source), &demo.url(), None);
    let absurd = json!({ "users": 1, "spawn_rate": 1, "host": "", "run_time_s": null,
                         "rate": 1e12, "max_users": 10 });
    let (status, body) = post(&format!("{}/api/start", ui.url()), absurd, &[]);
    assert_eq!(status, 422, "{body}");
    let start = json!({ "users": 1, "spawn_rate": 1, "host": "", "run_time_s": null,
                        "rate": 20, "max_users": 10 });
    let (status, body) = post(&format!("{}/api/start", ui.url()), start, &[]);
    assert_eq!(status, 200, "{body}");
    // Complete seconds at about 20 iterations, then at about 60 after the edit.
    let per_second = |s: &Value| -> Vec<u64> {
        s["recent"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| p["iterations"].as_u64().unwrap())
                    .collect()
            })
            .unwrap_or_default()
    };
    let state = wait_for(&ui, "a second at 20/s", |s| {
        per_second(s).iter().any(|n| (17..=23).contains(n))
    });
    assert_eq!(state["target"]["rate"], 20.0);
    let users_edit = json!({ "users": 5 });
    assert_eq!(
        post(&format!("{}/api/edit", ui.url()), users_edit, &[]).0,
        409,
        "a rate test changes its rate"
    );
    let edit = json!({ "rate": 60 });
    assert_eq!(post(&format!("{}/api/edit", ui.url()), edit, &[]).0, 200);
    wait_for(&ui, "a second at 60/s", |s| {
        per_second(s).iter().any(|n| (54..=66).contains(n))
    });
    let before = demo.stats.snapshot()["GET /health"];
    assert_eq!(
        post(&format!("{}/api/stop", ui.url()), json!({}), &[]).0,
        200
    );
    wait_for(&ui, "the stop", |s| s["status"] == "stopped");
    let report = get(&format!("{}/api/download/json", ui.url()));
    let served = demo.stats.snapshot()["GET /health"];
    assert!(served >= before);
    assert_eq!(report["aggregated"]["requests"].as_u64().unwrap(), served);
    ui.stop();
}

#[test]
fn stopping_the_ui_ends_its_live_streams() {
    let demo = stampede::demo::spawn(0, false).unwrap();
    let ui = web_ui(&demo.url(), None);
    let events = format!("{}/api/events", ui.url());
    let rt = runtime();
    // A page's stream, open: its first event is the state as it is.
    let mut stream = rt.block_on(async { reqwest::get(&events).await.unwrap() });
    let first = rt.block_on(async { stream.chunk().await.unwrap().unwrap() });
    assert!(String::from_utf8_lossy(&first).starts_with("data: {"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        ui.stop();
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the server stopped while a stream was open");
    // The stream ended with the server.
    let rest = rt.block_on(async { stream.chunk().await });
    assert!(matches!(rest, Ok(None) | Err(_)), "{rest:?}");
}
