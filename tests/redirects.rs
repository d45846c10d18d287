//! Redirects under the script's control: how many are followed (curl's limit of 10, the
//! run's `--max-redirects`, a request's `redirects`), what the script sees of each hop,
//! and what the server received.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use common::{assert_checks, failures_of, run};

/// `/chain/N` redirects to `/chain/N-1`; `/chain/0` answers "done". Counts every request.
fn chain_server() -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/chain/{n}",
            get(
                |State(hits): State<Arc<AtomicU64>>, Path(n): Path<u32>| async move {
                    hits.fetch_add(1, Ordering::Relaxed);
                    if n == 0 {
                        return "done".into_response();
                    }
                    let next = format!("/chain/{}", n - 1);
                    (StatusCode::FOUND, [(header::LOCATION, next)]).into_response()
                },
            ),
        )
        .with_state(hits.clone());
    let (url, _thread) = common::serve(app);
    (url, hits)
}

#[test]
fn a_chain_of_exactly_ten_is_followed_and_each_hop_is_seen() {
    let (url, hits) = chain_server();
    let out = run(
        r#"fn t() {
               let r = http::get("/chain/10");
               check(r.status == 200 && r.text == "done", "followed to the end");
               check(r.url.ends_with("/chain/0"), "r.url is where the redirects led");
               check(r.redirects.len() == 10, "ten hops");
               let first = r.redirects[0];
               check(first.status == 302 && first.url.ends_with("/chain/10")
                     && first.location == "/chain/9", "the first hop");
               check(r.redirects[9].location == "/chain/0", "the last hop");
           }"#,
        &url,
        |a| a.flags.iterations = Some(1),
    );
    assert_checks(
        &out,
        &[
            "followed to the end",
            "r.url is where the redirects led",
            "ten hops",
            "the first hop",
            "the last hop",
        ],
        1,
    );
    assert_eq!(
        hits.load(Ordering::Relaxed),
        11,
        "ten redirects and the answer"
    );
    assert_eq!(out.totals.aggregated().failures, 0);
}

#[test]
fn past_the_runs_limit_a_request_fails_after_sending_exactly_the_limit() {
    let (url, hits) = chain_server();
    let out = run(r#"fn t() { http::get("/chain/11"); }"#, &url, |a| {
        a.flags.iterations = Some(1)
    });
    assert_eq!(
        failures_of(&out, "request"),
        1,
        "{:?}",
        out.totals.failures()
    );
    let message = &out.totals.failures()[0].0.message;
    assert!(message.contains("more than 10 redirects"), "{message}");
    assert_eq!(
        hits.load(Ordering::Relaxed),
        11,
        "it stopped at the 11th 3xx"
    );

    let (url, hits) = chain_server();
    let out = run(
        r#"fn t() { http::get("/chain/3"); http::get("/chain/4"); }"#,
        &url,
        |a| {
            a.flags.iterations = Some(1);
            a.flags.max_redirects = Some(3);
        },
    );
    assert_eq!(
        failures_of(&out, "request"),
        1,
        "3 followed, 4 is one too many"
    );
    assert_eq!(hits.load(Ordering::Relaxed), 4 + 4);
}

#[test]
fn a_request_may_follow_none_or_a_few_and_sees_the_redirect_itself() {
    let (url, hits) = chain_server();
    let out = run(
        r#"fn t() {
               let r = http::get("/chain/3", #{ redirects: 0 });
               check(r.status == 302 && r.headers["location"] == "/chain/2"
                     && r.redirects.len() == 0 && r.ok, "none followed");
               let r = http::get("/chain/5", #{ redirects: 2 });
               check(r.status == 302 && r.url.ends_with("/chain/3")
                     && r.redirects.len() == 2, "two followed, the third returned");
           }"#,
        &url,
        |a| a.flags.iterations = Some(1),
    );
    assert_checks(
        &out,
        &["none followed", "two followed, the third returned"],
        1,
    );
    assert_eq!(hits.load(Ordering::Relaxed), 1 + 3);
    assert_eq!(out.totals.aggregated().failures, 0);
}
