//! Request options as the server receives them: query strings and form bodies from script
//! values (arrays repeat their key, ordered pairs keep their order, a value with no URL form
//! is an error rather than its debug text), and basic authentication.

mod common;

use common::{assert_checks, failures_of, run};

#[test]
fn arrays_repeat_their_key_and_pairs_keep_their_order() {
    let server = common::start();
    let out = run(
        r#"fn t() {
               let q = http::get("/echo", #{ query: #{ ids: ["1", 2], on: true } }).json().query;
               check(q == "ids=1&ids=2&on=true", `repeated key: ${q}`);
               let q = http::get("/echo", #{ query: [["z", 1], ["a", "x y"], ["z", 2.5]] }).json().query;
               check(q == "z=1&a=x+y&z=2.5", `ordered pairs: ${q}`);
               let b = http::post("/echo", #{ form: #{ tag: ["a", "b"] } }).json().body;
               check(b == "tag=a&tag=b", `form: ${b}`);
           }"#,
        &server.url,
        |a| a.flags.iterations = Some(1),
    );
    assert_checks(
        &out,
        &[
            "repeated key: ids=1&ids=2&on=true",
            "ordered pairs: z=1&a=x+y&z=2.5",
            "form: tag=a&tag=b",
        ],
        1,
    );
}

#[test]
fn a_value_without_a_url_form_is_an_error_not_debug_text() {
    let server = common::start();
    let out = run(
        r#"fn t() { http::get("/echo", #{ query: #{ filter: #{ a: 1 } } }); }"#,
        &server.url,
        |a| a.flags.iterations = Some(2),
    );
    assert_eq!(
        failures_of(&out, "script"),
        2,
        "{:?}",
        out.totals.failures()
    );
    let message = &out.totals.failures()[0].0.message;
    assert!(message.contains("`filter` is a map"), "{message}");
    assert_eq!(server.counters.hits("GET /echo"), 0, "nothing was sent");
}

#[test]
fn auth_sends_basic_credentials() {
    let server = common::start();
    let out = run(
        r#"fn t() {
               check(http::get("/basic", #{ auth: ["u", "p w"] }).status == 200, "accepted");
               check(http::get("/basic", #{ auth: ["u", "wrong"] }).status == 401, "wrong refused");
               check(http::get("/basic").status == 401, "none refused");
           }"#,
        &server.url,
        |a| a.flags.iterations = Some(2),
    );
    assert_checks(&out, &["accepted", "wrong refused", "none refused"], 2);
    assert_eq!(server.counters.hits("GET /basic"), 6);
}
