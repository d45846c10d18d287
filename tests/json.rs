//! Reading JSON answers: the whole document (`r.json()`) and GJSON selectors
//! (`r.json("items.#")`, k6's `r.json(selector)`), against a real server.

mod common;

use common::{assert_checks, failures_of, run};

#[test]
fn selectors_read_what_the_whole_document_holds() {
    let server = common::start();
    let out = run(
        r#"fn t() {
               let r = http::get("/catalog");
               let j = r.json();
               check(r.json("name") == "x" && r.json("name") == j.name, "string");
               check(r.json("items.#") == 3 && type_of(r.json("items.#")) == "i64", "count");
               check(r.json("items.1.id") == 2 && type_of(r.json("items.1.id")) == "i64", "int");
               check(r.json("meta.price") == 2.5 && r.json("meta.ok") == true, "float and bool");
               check(r.json("meta.big") > 1.8e19, "beyond i64 reads as a float, as r.json() does");
               check(r.json("meta.none") == () && r.json("no.such.path") == (), "null and missing");
               check(r.json("items.#.id") == [1, 2, 3], "one field of every item");
               check(r.json("items.#(id==3).name") == "c", "query");
               let m = r.json("meta");
               check(type_of(m) == "map" && m.page == 1 && m.page == j.meta.page, "object");
               let items = r.json("items");
               check(items.len() == j.items.len() && items[2].tags[0] == j.items[2].tags[0], "array");
           }"#,
        &server.url,
        |a| a.flags.iterations = Some(3),
    );
    assert_checks(
        &out,
        &[
            "string",
            "count",
            "int",
            "float and bool",
            "beyond i64 reads as a float, as r.json() does",
            "null and missing",
            "one field of every item",
            "query",
            "object",
            "array",
        ],
        3,
    );
    assert_eq!(server.counters.hits("GET /catalog"), 3);
    assert_eq!(out.totals.aggregated().failures, 0);
}

#[test]
fn a_selector_fails_a_broken_body_as_the_whole_document_does() {
    let server = common::start();
    // GJSON alone would read "x" out of the truncated document; stampede checks the body.
    let out = run(
        r#"fn t() {
               try {
                   let name = http::get("/truncated").json("name");
                   check(false, "caught truncated: " + name);
               } catch (e) {
                   check(e.kind == "body" && e.message.contains("invalid JSON"), "caught truncated");
               }
               let r = http::get("/garbage");
               try { r.json("name"); check(false, "caught garbage"); }
               catch (e) { check(e.kind == "body" && e.request == "GET /garbage", "caught garbage"); }
               // The same response asked again is counted once.
               try { r.json("other"); } catch (e) {}
           }"#,
        &server.url,
        |a| a.flags.iterations = Some(4),
    );
    assert_checks(&out, &["caught truncated", "caught garbage"], 4);
    assert_eq!(server.counters.hits("GET /truncated"), 4);
    assert_eq!(server.counters.hits("GET /garbage"), 4);
    assert_eq!(failures_of(&out, "body"), 8, "{:?}", out.totals.failures());
    assert_eq!(out.totals.aggregated().failures, 8);
    assert_eq!(out.totals.failed_iterations, 0);
}
