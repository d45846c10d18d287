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

#[test]
fn multipart_uploads_a_file_from_the_scripts_folder_and_fields() {
    use axum::extract::{Multipart, State};
    use std::sync::{Arc, Mutex};
    type Parts = Arc<Mutex<Vec<(String, Option<String>, Option<String>, Vec<u8>)>>>;
    let parts: Parts = Arc::default();
    let app = axum::Router::new()
        .route(
            "/upload",
            axum::routing::post(
                |State(parts): State<Parts>, mut form: Multipart| async move {
                    while let Some(field) = form.next_field().await.unwrap() {
                        let name = field.name().unwrap_or_default().to_owned();
                        let file = field.file_name().map(str::to_owned);
                        let kind = field.content_type().map(str::to_owned);
                        let bytes = field.bytes().await.unwrap().to_vec();
                        parts.lock().unwrap().push((name, file, kind, bytes));
                    }
                    "ok"
                },
            ),
        )
        .with_state(parts.clone());
    let (url, _thread) = common::serve(app);
    // A binary file beside the script (the scripts are written to the temp folder).
    let photo: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let file = tempfile::Builder::new()
        .suffix(".bin")
        .tempfile_in(std::env::temp_dir())
        .unwrap();
    std::fs::write(file.path(), &photo).unwrap();
    let name = file.path().file_name().unwrap().to_str().unwrap();
    let out = run(
        &format!(
            r#"fn t() {{
                   let r = http::post("/upload", #{{ multipart: #{{
                       title: "a \"quoted\" title",
                       photo: #{{ file: "{name}", filename: "photo.bin", content_type: "image/png" }},
                   }} }});
                   check(r.status == 200, "uploaded");
               }}"#
        ),
        &url,
        |a| a.flags.iterations = Some(2),
    );
    assert_checks(&out, &["uploaded"], 2);
    let got = parts.lock().unwrap().clone();
    assert_eq!(got.len(), 4, "two parts, twice");
    let (field, file_name, kind, bytes) = &got[0];
    assert_eq!(field, "photo");
    assert_eq!(file_name.as_deref(), Some("photo.bin"));
    assert_eq!(kind.as_deref(), Some("image/png"));
    assert_eq!(bytes, &photo, "the file's bytes, unchanged");
    assert_eq!(got[1].0, "title");
    assert_eq!(got[1].3, b"a \"quoted\" title");
    // The data files' sandbox: nothing outside the script's folder is sent.
    let out = run(
        r#"fn t() { http::post("/upload", #{ multipart: #{ f: #{ file: "/etc/passwd" } } }); }"#,
        &url,
        |a| a.flags.iterations = Some(1),
    );
    assert_eq!(
        failures_of(&out, "script"),
        1,
        "{:?}",
        out.totals.failures()
    );
    assert_eq!(parts.lock().unwrap().len(), 4, "nothing more was received");
}
