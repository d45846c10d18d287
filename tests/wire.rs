//! The HTTP/1.1 client against servers that frame responses in every way the protocol
//! allows, close connections under it, or break off mid-body.

mod common;

use std::sync::atomic::Ordering;

use common::raw::{start_raw, start_raw_tls};
use common::{failures_of, run};

#[test]
fn every_framing_reads_whole_bodies_and_dead_connections_are_retried() {
    let server = start_raw();
    let out = run(
        r#"fn t() {
               check(http::get("/chunked").text == "hello, world", "chunked");
               check(http::get("/interim").text == "final", "after 100 Continue");
               check(http::get("/until-close").text == "until close body", "until close");
               check(http::get("/close-after").text == "ok", "closed after");
           }"#,
        &server.url,
        |a| {
            a.flags.users = Some(2);
            a.flags.iterations_per_user = Some(10);
        },
    );
    for name in [
        "chunked",
        "after 100 Continue",
        "until close",
        "closed after",
    ] {
        let c = out.totals.checks()[name];
        assert_eq!((c.pass, c.fail), (20, 0), "{name}");
    }
    assert_eq!(
        out.totals.aggregated().failures,
        0,
        "{:?}",
        out.totals.failures()
    );
    let requests = server.counts.requests.load(Ordering::SeqCst);
    assert_eq!(requests, 80);
    assert_eq!(out.totals.aggregated().requests, requests);
    // Per iteration: one connection carries /chunked, /interim and /until-close (which
    // ends it), a second carries /close-after, which the server closes while the client
    // keeps it for the next iteration's /chunked, which must go again on a new connection.
    assert_eq!(server.counts.connections.load(Ordering::SeqCst), 40);
}

#[test]
fn a_body_cut_short_is_a_reset_and_the_run_goes_on() {
    let server = start_raw();
    let out = run(r#"fn t() { http::get("/truncated"); }"#, &server.url, |a| {
        a.flags.iterations = Some(5)
    });
    assert_eq!(failures_of(&out, "reset"), 5, "{:?}", out.totals.failures());
    assert_eq!(out.totals.iterations, 5);
    assert_eq!(server.counts.requests.load(Ordering::SeqCst), 5);
}

#[test]
fn head_responses_have_no_body_and_keep_the_connection_usable() {
    let server = common::start();
    let out = run(
        r#"fn t() {
               let h = http::head("/json");
               check(h.status == 200 && h.body.len() == 0, "head has no body");
               check(http::get("/json").json().id == "42", "next response intact");
           }"#,
        &server.url,
        |a| {
            a.flags.users = Some(2);
            a.flags.iterations = Some(50);
        },
    );
    for name in ["head has no body", "next response intact"] {
        let c = out.totals.checks()[name];
        assert_eq!((c.pass, c.fail), (50, 0), "{name}");
    }
    assert_eq!(server.counters.hits("HEAD /json"), 50);
    assert_eq!(server.counters.hits("GET /json"), 50);
}

#[test]
fn tls_keeps_connections_alive_and_checks_certificates_unless_told_not_to() {
    let server = start_raw_tls();
    let script = r#"fn t() {
                      check(http::get("/chunked").text == "hello, world", "chunked over TLS");
                      check(http::get("/interim").text == "final", "interim over TLS");
                  }"#;
    // A self-signed certificate is refused by default: no request reaches the server.
    let out = run(script, &server.url, |a| a.flags.iterations = Some(3));
    assert_eq!(
        failures_of(&out, "connect"),
        3,
        "{:?}",
        out.totals.failures()
    );
    let refused = out.totals.failures();
    assert!(
        refused.iter().any(|(k, _)| k.message.contains("TLS")),
        "{refused:?}"
    );
    assert_eq!(server.counts.requests.load(Ordering::SeqCst), 0);

    let out = run(script, &server.url, |a| {
        a.flags.insecure = true;
        a.flags.users = Some(2);
        a.flags.iterations_per_user = Some(10);
    });
    for name in ["chunked over TLS", "interim over TLS"] {
        let c = out.totals.checks()[name];
        assert_eq!((c.pass, c.fail), (20, 0), "{name}");
    }
    assert_eq!(server.counts.requests.load(Ordering::SeqCst), 40);
    assert_eq!(out.totals.aggregated().requests, 40);
    // 3 refused handshakes, then one kept-alive connection per user.
    assert_eq!(server.counts.connections.load(Ordering::SeqCst), 3 + 2);
}

#[test]
fn odd_characters_in_paths_are_encoded_not_sent_raw() {
    let server = common::start();
    let out = run(
        r#"fn t() {
               check(http::get("/items/a b").text == "a b", "space");
               check(http::get("/items/café").text == "café", "non-ASCII");
               let crlf = "/items/x\r\nX-Injected: 1";
               check(http::get(crlf).text == "x\r\nX-Injected: 1", "CR LF stays in the path");
           }"#,
        &server.url,
        |a| a.flags.iterations = Some(2),
    );
    for name in ["space", "non-ASCII", "CR LF stays in the path"] {
        let c = out.totals.checks()[name];
        assert_eq!((c.pass, c.fail), (2, 0), "{name}");
    }
    assert_eq!(
        server.counters.hits("GET /items/{id}"),
        6,
        "one request each, none injected"
    );
}

#[test]
fn bodies_past_the_limit_fail_their_request_not_the_process() {
    let server = start_raw();
    let out = run(
        r#"fn endless() { http::get("/endless"); }
           fn endless_chunked() { http::get("/endless-chunked"); }
           fn huge_length() { http::get("/huge-length"); }
           fn gzip_bomb() { http::get("/gzip-bomb"); }
           fn fine() { check(http::get("/chunked").text == "hello, world", "small body"); }"#,
        &server.url,
        |a| {
            a.flags.max_body = Some(1 << 20);
            a.flags.iterations = Some(50);
            a.flags.seed = Some(7);
        },
    );
    let t = &out.totals;
    for name in ["/endless", "/endless-chunked", "/huge-length", "/gzip-bomb"] {
        let stats = t
            .get("GET", name)
            .unwrap_or_else(|| panic!("{name} was requested"));
        assert!(
            stats.requests > 0 && stats.failures == stats.requests,
            "{name}"
        );
    }
    let too_large = t
        .failures()
        .iter()
        .filter(|(k, _)| k.kind.to_string() == "body" && k.message.contains("larger than 1.0 MiB"))
        .map(|(_, n)| n)
        .sum::<u64>();
    let small = t.get("GET", "/chunked").unwrap().requests;
    assert_eq!(too_large, 50 - small, "{:?}", t.failures());
    assert_eq!(t.checks()["small body"].fail, 0);
    assert_eq!(t.aggregated().requests, 50);
}
