//! HTTP/2 and TLS as users meet them: ALPN picks HTTP/2 where the server offers it,
//! `--http1.1` refuses it, `--http2` speaks it on cleartext (h2c), one connection per user;
//! a private CA (`--cacert`) and client certificates (`--cert`, `--key`) for mutual TLS.
//! Each checked against a server's own record of connections and protocol versions.

mod common;

use std::sync::atomic::Ordering;

use common::tls::{Mode, Seen, pki, serve};
use common::{assert_checks, failures_of, run};
use rustls::pki_types::pem::PemObject;

const USERS: u64 = 4;
const PER_USER: u64 = 10;
const ITERATIONS: u64 = USERS * PER_USER;

/// Every user checks what it was served over; each iteration is one request.
fn script(proto: &str, tls_version: &str, alpn: &str) -> String {
    format!(
        r#"fn t() {{
               let r = http::get("/hello");
               check(r.status == 200, "ok");
               check(r.proto == "{proto}", "proto");
               check(r.tls_version == "{tls_version}", "tls version");
               check(r.alpn == "{alpn}", "alpn");
               check(r.json("version") == "{proto}", "the server agrees");
           }}"#
    )
}

fn assert_served(seen: &Seen, http1: u64, http2: u64) {
    assert_eq!(
        seen.http1.load(Ordering::SeqCst),
        http1,
        "HTTP/1.1 requests"
    );
    assert_eq!(seen.http2.load(Ordering::SeqCst), http2, "HTTP/2 requests");
}

#[test]
fn alpn_chooses_http2_over_tls_with_one_connection_per_user() {
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::Tls);
    let out = run(&script("HTTP/2.0", "tls1.3", "h2"), &url, |a| {
        a.flags.users = Some(USERS);
        a.flags.iterations_per_user = Some(PER_USER);
        a.flags.http.cacert = Some(pki.ca_pem.clone());
    });
    assert_checks(
        &out,
        &["ok", "proto", "tls version", "alpn", "the server agrees"],
        ITERATIONS,
    );
    assert_served(&seen, 0, ITERATIONS);
    assert_eq!(out.totals.aggregated().requests, seen.requests());
    assert_eq!(
        out.totals.protocols.get("HTTP/2.0 over tls1.3"),
        Some(&ITERATIONS),
        "{:?}",
        out.totals.protocols
    );
    // Each user keeps its own connection, as browsers and k6 do.
    assert_eq!(seen.connections.load(Ordering::SeqCst), USERS);
}

#[test]
fn http1_1_flag_keeps_to_http1_over_tls() {
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::Tls);
    let out = run(&script("HTTP/1.1", "tls1.3", "http/1.1"), &url, |a| {
        a.flags.users = Some(USERS);
        a.flags.iterations_per_user = Some(PER_USER);
        a.flags.http.cacert = Some(pki.ca_pem.clone());
        a.flags.http.http1 = true;
    });
    assert_checks(
        &out,
        &["ok", "proto", "tls version", "alpn", "the server agrees"],
        ITERATIONS,
    );
    assert_served(&seen, ITERATIONS, 0);
    assert_eq!(seen.connections.load(Ordering::SeqCst), USERS);
    assert_eq!(
        out.totals.protocols.get("HTTP/1.1 over tls1.3"),
        Some(&ITERATIONS)
    );
}

#[test]
fn http2_flag_speaks_h2c_on_cleartext_with_prior_knowledge() {
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::Cleartext);
    let out = run(&script("HTTP/2.0", "", ""), &url, |a| {
        a.flags.users = Some(USERS);
        a.flags.iterations_per_user = Some(PER_USER);
        a.flags.http.http2 = true;
    });
    assert_checks(
        &out,
        &["ok", "proto", "tls version", "alpn", "the server agrees"],
        ITERATIONS,
    );
    assert_served(&seen, 0, ITERATIONS);
    assert_eq!(seen.connections.load(Ordering::SeqCst), USERS);
}

#[test]
fn http2_bodies_larger_than_the_flow_control_window_go_both_ways() {
    let pki = pki();
    let (url, _seen) = serve(&pki, Mode::Tls);
    let out = run(
        r#"fn t() {
               let sent = "y";
               sent.pad(300000, "y");
               let echo = http::post("/echo", #{ body: sent });
               check(echo.proto == "HTTP/2.0" && echo.text.len() == 300000, "300 KB up and back");
               let big = http::get("/big");
               check(big.text.len() == 1048576, "1 MiB down");
           }"#,
        &url,
        |a| {
            a.flags.users = Some(2);
            a.flags.iterations_per_user = Some(3);
            a.flags.http.cacert = Some(pki.ca_pem.clone());
        },
    );
    assert_checks(&out, &["300 KB up and back", "1 MiB down"], 6);
}

#[test]
fn cleartext_is_http1_unless_told() {
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::Cleartext);
    let out = run(&script("HTTP/1.1", "", ""), &url, |a| {
        a.flags.iterations = Some(3);
    });
    assert_checks(
        &out,
        &["ok", "proto", "tls version", "alpn", "the server agrees"],
        3,
    );
    assert_served(&seen, 3, 0);
}

#[test]
fn an_unknown_ca_fails_to_connect_and_nothing_is_served() {
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::Tls);
    let out = run(r#"fn t() { http::get("/hello"); }"#, &url, |a| {
        a.flags.iterations = Some(3);
    });
    assert_eq!(
        failures_of(&out, "connect"),
        3,
        "the built-in roots do not know the CA"
    );
    assert_eq!(seen.requests(), 0);
}

#[test]
fn mutual_tls_presents_the_client_certificate() {
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::MutualTls);
    let out = run(&script("HTTP/2.0", "tls1.3", "h2"), &url, |a| {
        a.flags.users = Some(2);
        a.flags.iterations_per_user = Some(5);
        a.flags.http.cacert = Some(pki.ca_pem.clone());
        a.flags.http.cert = Some(pki.client_cert_pem.clone());
        a.flags.http.key = Some(pki.client_key_pem.clone());
    });
    assert_checks(
        &out,
        &["ok", "proto", "tls version", "alpn", "the server agrees"],
        10,
    );
    assert_served(&seen, 0, 10);
    let certs = seen.client_certs.lock().unwrap();
    assert_eq!(certs.len(), 2, "one certificate per connection");
    let client = std::fs::read_to_string(&pki.client_cert_pem).unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(client.as_bytes()).unwrap();
    assert!(certs.iter().all(|c| c[..] == der[..]));
}

#[test]
fn mutual_tls_without_a_certificate_is_refused_and_counted() {
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::MutualTls);
    let out = run(r#"fn t() { http::get("/hello"); }"#, &url, |a| {
        a.flags.iterations = Some(3);
        a.flags.http.cacert = Some(pki.ca_pem.clone());
    });
    let totals = out.totals.aggregated();
    assert_eq!((totals.requests, totals.failures), (3, 3));
    assert_eq!(seen.requests(), 0);
    // TLS 1.3 servers refuse a missing certificate after the client's handshake is done,
    // so the client learns it on the first exchange: the connection breaks.
    let counted: u64 = ["connect", "reset", "request"]
        .iter()
        .map(|kind| failures_of(&out, kind))
        .sum();
    assert_eq!(counted, 3);
}

#[test]
fn an_unusable_ca_file_or_client_key_is_a_usage_error_before_any_traffic() {
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::Tls);
    let script = common::script(r#"fn t() { http::get("/hello"); }"#);
    let missing = pki.dir.path().join("missing.pem");
    for flags in [
        vec!["--cacert".to_owned(), missing.display().to_string()],
        vec![
            "--cert".to_owned(),
            pki.client_cert_pem.display().to_string(),
            "--key".to_owned(),
            pki.ca_pem.display().to_string(),
        ],
    ] {
        let out = common::bin::stampede()
            .arg("run")
            .arg(script.path())
            .args(["--host", &url, "-i", "1", "-q"])
            .args(&flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains("not a usable PEM"), "{stderr}");
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 0);
}
