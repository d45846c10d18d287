//! Output files and thresholds, from real runs of the binary against a real server.

mod common;

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;

const SCRIPT: &str = r#"
const options = #{ tasks: #{ ok: 3, missing: 1 } };
fn ok() {
    let r = http::get("/json");
    check(r.json().name == "x", "name is x");
}
fn missing() { http::get("/status/404", #{ name: "/status/404" }); }
"#;

fn stampede(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("stampede")
        .unwrap()
        .args(args)
        .output()
        .unwrap()
}

struct Run {
    stdout: String,
    code: Option<i32>,
    dir: tempfile::TempDir,
}

fn run_with(server: &common::TestServer, script: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.rhai");
    std::fs::write(&file, script).unwrap();
    let json = dir.path().join("result.json");
    let csv = dir.path().join("out");
    let html = dir.path().join("report.html");
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--host",
        &server.url,
        "-u",
        "4",
        "-i",
        "400",
        "-q",
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = stampede(&args);
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        code: out.status.code(),
        dir,
    }
}

fn json(run: &Run) -> serde_json::Value {
    let text = std::fs::read_to_string(run.dir.path().join("result.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn decode(b64: &str) -> Histogram<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap()
}

#[test]
fn json_validates_against_the_schema_and_matches_the_server() {
    let server = common::start();
    let run = run_with(&server, SCRIPT, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let doc = json(&run);
    let schema_path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema/result-v2.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");

    assert_eq!(doc["aggregated"]["requests"], 400);
    assert_eq!(doc["aggregated"]["requests"], server.counters.total());
    let by_name = |name: &str| {
        doc["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()["requests"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(by_name("/json"), server.counters.hits("GET /json"));
    assert_eq!(
        by_name("/status/404"),
        server.counters.hits("GET /status/{code}")
    );
    let failures: u64 = doc["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["count"].as_u64().unwrap())
        .sum();
    assert_eq!(failures, by_name("/status/404"));
}

#[test]
fn merged_histograms_reproduce_the_summary_percentiles() {
    let server = common::start();
    let run = run_with(&server, SCRIPT, &[]);
    let doc = json(&run);
    let mut merged: Histogram<u64> = Histogram::new(3).unwrap();
    for r in doc["requests"].as_array().unwrap() {
        merged
            .add(decode(r["histogram"].as_str().unwrap()))
            .unwrap();
    }
    assert_eq!(merged.len(), 400);
    let aggregated = decode(doc["aggregated"]["histogram"].as_str().unwrap());
    let row = run
        .stdout
        .lines()
        .find(|l| l.contains("Aggregated"))
        .expect("summary has an Aggregated row");
    let cells: Vec<&str> = row
        .split(['│', '┆'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    // Aggregated, requests, fails, req/s, min, avg, p50, p90, p95, p99, p99.9, max
    let printed_p50 = cells[6];
    let printed_p99 = cells[9];
    let fmt = |us: u64| stampede::report::fmt_ms(us as f64 / 1000.0);
    assert_eq!(fmt(merged.value_at_quantile(0.50)), printed_p50, "{row}");
    assert_eq!(fmt(merged.value_at_quantile(0.99)), printed_p99, "{row}");
    assert_eq!(fmt(aggregated.value_at_quantile(0.99)), printed_p99);
}

#[test]
fn csv_history_rows_add_up_to_the_totals() {
    let server = common::start();
    let run = run_with(&server, SCRIPT, &[]);
    let read = |name: &str| {
        let path = run.dir.path().join(format!("out_{name}.csv"));
        let mut r = csv::Reader::from_path(path).unwrap();
        let header = r.headers().unwrap().clone();
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        (header, rows)
    };
    let (h, history) = read("history");
    assert_eq!(&h[0], "second");
    let (sh, stats) = read("stats");
    assert_eq!(&sh[2], "requests");
    for stat in &stats {
        if &stat[1] == "Aggregated" {
            continue;
        }
        let (method, name, total) = (&stat[0], &stat[1], stat[2].parse::<u64>().unwrap());
        let summed: u64 = history
            .iter()
            .filter(|r| &r[2] == method && &r[3] == name)
            .map(|r| r[4].parse::<u64>().unwrap())
            .sum();
        assert_eq!(summed, total, "{method} {name}");
    }
    let (_, failures) = read("failures");
    assert_eq!(&failures[0][1], "status");
}

#[test]
fn thresholds_set_the_exit_code() {
    let server = common::start();
    let pass = run_with(
        &server,
        SCRIPT,
        &["--threshold", "p99 < 10s", "--threshold", "checks > 99%"],
    );
    assert_eq!(pass.code, Some(0), "{}", pass.stdout);
    assert!(pass.stdout.contains("✓ p99 < 10s"), "{}", pass.stdout);

    let fail = run_with(&server, SCRIPT, &["--threshold", "failure_rate < 1%"]);
    assert_eq!(fail.code, Some(1), "{}", fail.stdout);
    assert!(
        fail.stdout.contains("✗ failure_rate < 1%"),
        "{}",
        fail.stdout
    );
    let doc = json(&fail);
    assert_eq!(doc["thresholds"][0]["passed"], false);

    let scoped = run_with(
        &server,
        SCRIPT,
        &["--threshold", "GET /json: failure_rate < 1%"],
    );
    assert_eq!(
        scoped.code,
        Some(0),
        "only /json is judged: {}",
        scoped.stdout
    );

    let errors = run_with(&server, SCRIPT, &["--fail-on-error"]);
    assert_eq!(
        errors.code,
        Some(1),
        "404s fail the run with --fail-on-error"
    );

    let from_script = run_with(
        &server,
        &format!("{SCRIPT}\nconst options2 = 0;").replace(
            "const options = #{ tasks: #{ ok: 3, missing: 1 } };",
            r#"const options = #{ tasks: #{ ok: 3, missing: 1 }, thresholds: #{ "/status/404": ["failure_rate < 1%"] } };"#,
        ),
        &[],
    );
    assert_eq!(from_script.code, Some(1), "{}", from_script.stdout);
    assert!(
        from_script
            .stdout
            .contains("/status/404: failure_rate < 1%")
    );
}

#[test]
fn bad_threshold_syntax_exits_2_before_any_traffic() {
    let server = common::start();
    let run = run_with(&server, SCRIPT, &["--threshold", "p95 << fast"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(server.counters.total(), 0);
}

#[test]
fn html_report_has_charts_and_escapes_script_content() {
    let server = common::start();
    let script = r#"
fn t() {
    let r = http::get("/json", #{ name: "<b>bold</b>" });
    r.fail("<script>alert('x')</script>");
    check(true, "<img src=x onerror=alert(1)>");
}"#;
    let run = run_with(&server, script, &[]);
    let html = std::fs::read_to_string(run.dir.path().join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.matches("<svg").count() >= 5,
        "four time charts and a distribution"
    );
    assert!(
        !html.contains("<script"),
        "no script tag, injected or otherwise"
    );
    assert!(!html.contains("<img"), "check names are escaped");
    assert!(!html.contains("<b>bold"), "request names are escaped");
    assert!(
        html.contains("&lt;script&gt;alert"),
        "the failure message is shown, escaped"
    );
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "nothing is fetched"
    );
}

/// Renders the report in headless Chromium (installed by .ci/run) and checks the page
/// loads with its charts and without errors.
#[test]
fn html_report_renders_in_a_browser() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(chromium) = chromium else {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium");
        eprintln!("chromium not installed: skipping the rendering check");
        return;
    };
    let server = common::start();
    let run = run_with(&server, SCRIPT, &[]);
    let html = run.dir.path().join("report.html");
    let profile = run.dir.path().join("chromium-profile");
    let shot = run.dir.path().join("shot.png");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1000,2600",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<h1>stampede report</h1>"), "page rendered");
    assert!(
        dom.matches("<svg").count() >= 5,
        "charts are in the rendered DOM"
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a non-trivial screenshot"
    );
}
