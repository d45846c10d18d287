//! Conformance against a real third-party HTTP test service: httpbin (PyPI) under gunicorn,
//! in a virtualenv `.ci/run` makes (`target/httpbin-venv`). Each client behaviour is a
//! named check; the test prints the list with pass/fail and fails if any failed.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::bin::wait_until;
use stampede::cli::{Plan, RunArgs, RunFlags};

/// httpbin under gunicorn (threaded workers: keep-alive and a slow request beside the
/// others) on a free loopback port.
struct Httpbin {
    child: Child,
    url: String,
}

impl Httpbin {
    fn start() -> Self {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/httpbin-venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: `.ci/run` makes it (python3 -m venv target/httpbin-venv; \
             target/httpbin-venv/bin/pip install httpbin gunicorn)",
            python.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python)
            .args(["-m", "gunicorn", "--workers", "2", "--threads", "8"])
            .args(["--bind", &format!("127.0.0.1:{port}"), "httpbin:app"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("httpbin to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Httpbin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Each behaviour: its check's name, and the Rhai statements that check it (`r` is free).
const BEHAVIOURS: &[(&str, &str)] = &[
    (
        "query: a map, an array repeats its key",
        r#"let r = http::get("/get", #{ query: #{ q: "a b", ids: ["1", "2"] } });
           check(r.json("args.q") == "a b" && r.json("args.ids") == ["1", "2"], NAME);"#,
    ),
    (
        "query: ordered key/value pairs",
        r#"let r = http::get("/get", #{ query: [["b", "2"], ["a", "1"]] });
           check(r.json("url").ends_with("/get?b=2&a=1"), NAME);"#,
    ),
    (
        "JSON body",
        r#"let r = http::post("/post", #{ json: #{ n: 1, s: "x" } });
           check(r.json("json.n") == 1 && r.json("headers.Content-Type") == "application/json", NAME);"#,
    ),
    (
        "form body",
        r#"let r = http::post("/post", #{ form: #{ a: "1 2", b: "&" } });
           check(r.json("form.a") == "1 2" && r.json("form.b") == "&", NAME);"#,
    ),
    (
        "raw body",
        r#"let r = http::put("/put", #{ body: "plain text", headers: #{ "content-type": "text/plain" } });
           check(r.json("data") == "plain text", NAME);"#,
    ),
    (
        "multipart: a field and a file",
        r#"let r = http::post("/post", #{ multipart: #{ who: "ana", up: #{ file: "upload.txt", content_type: "text/plain" } } });
           check(r.json("form.who") == "ana" && r.json("files.up") == "file from the script's folder\n", NAME);"#,
    ),
    (
        "methods: PATCH, DELETE, OPTIONS, HEAD",
        r#"let a = http::patch("/anything", #{ body: "p" });
           let b = http::delete("/anything");
           let c = http::request("OPTIONS", "/anything");
           let d = http::head("/get");
           check(a.json("method") == "PATCH" && b.json("method") == "DELETE" && c.status == 200
                 && d.status == 200 && d.text == "", NAME);"#,
    ),
    (
        "status codes: 418 expected, 204 empty",
        r#"let r = http::get("/status/418", #{ expect: 418 });
           let e = http::get("/status/204");
           check(r.status == 418 && e.status == 204 && e.text == "", NAME);"#,
    ),
    (
        "redirects: relative, absolute, hops seen",
        r#"let a = http::get("/relative-redirect/3");
           let b = http::get("/absolute-redirect/2");
           check(a.status == 200 && a.redirects.len() == 3 && a.url.ends_with("/get")
                 && b.status == 200 && b.redirects.len() == 2, NAME);"#,
    ),
    (
        "redirects: a chain of exactly 10 is followed",
        r#"let r = http::get("/redirect/10");
           check(r.status == 200 && r.redirects.len() == 10, NAME);"#,
    ),
    (
        "redirects: off per request shows the 302 and its Location",
        r#"let r = http::get("/redirect-to?url=/get", #{ redirects: 0 });
           check(r.status == 302 && r.headers["location"] == "/get", NAME);"#,
    ),
    (
        "redirects: 307 keeps method and body, 303 becomes GET",
        r#"let a = http::post("/redirect-to?url=/anything&status_code=307", #{ body: "keep" });
           let b = http::post("/redirect-to?url=/anything&status_code=303", #{ body: "drop" });
           check(a.json("method") == "POST" && a.json("data") == "keep"
                 && b.json("method") == "GET" && b.json("data") == "", NAME);"#,
    ),
    (
        "basic auth: right and wrong password",
        r#"let ok = http::get("/basic-auth/ana/s3cret", #{ auth: ["ana", "s3cret"] });
           let no = http::get("/basic-auth/ana/s3cret", #{ auth: ["ana", "wrong"], expect: 401 });
           check(ok.json("authenticated") == true && no.status == 401, NAME);"#,
    ),
    (
        "digest auth: MD5, SHA-256, a wrong password",
        r#"let md5 = http::get("/digest-auth/auth/ana/s3cret", #{ auth: ["ana", "s3cret", "digest"] });
           let sha = http::get("/digest-auth/auth/ana/s3cret/SHA-256", #{ auth: ["ana", "s3cret", "digest"] });
           let no = http::get("/digest-auth/auth/ana/s3cret", #{ auth: ["ana", "wrong", "digest"], expect: 401 });
           check(md5.json("authenticated") == true && sha.json("authenticated") == true
                 && no.status == 401, NAME);"#,
    ),
    (
        "digest auth: answered after a redirect, never for another origin",
        r#"let same = http::get("/redirect-to?url=/digest-auth/auth/ana/s3cret", #{ auth: ["ana", "s3cret", "digest"] });
           let other_origin = exec::host();
           other_origin.replace("127.0.0.1", "localhost");
           let away = http::get(`/redirect-to?url=${other_origin}/digest-auth/auth/ana/s3cret`,
                                #{ auth: ["ana", "s3cret", "digest"], expect: 401 });
           check(same.json("authenticated") == true && away.status == 401
                 && away.url.contains("localhost"), NAME);"#,
    ),
    (
        "credentials in the URL are refused, not dropped",
        r#"let refused = false;
           let with_credentials = exec::host();
           with_credentials.replace("http://", "http://u:p@");
           try { http::get(`${with_credentials}/get`); }
           catch (e) { refused = e.to_string().contains("credentials"); }
           check(refused, NAME);"#,
    ),
    (
        "cookies: set by a redirect, sent back, deleted",
        r#"let set = http::get("/cookies/set?flavour=oat");
           let after = http::get("/cookies/delete?flavour");
           check(set.json("cookies.flavour") == "oat" && after.json("cookies.flavour") == (), NAME);"#,
    ),
    (
        "encodings: gzip, deflate, brotli decoded",
        r#"let g = http::get("/gzip");
           let d = http::get("/deflate");
           let b = http::get("/brotli");
           check(g.json("gzipped") == true && d.json("deflated") == true && b.json("brotli") == true, NAME);"#,
    ),
    (
        "headers: user agent and a custom header sent",
        r#"let r = http::get("/headers", #{ headers: #{ "X-Trace": "t-1" } });
           check(r.json("headers.User-Agent").starts_with("stampede/") && r.json("headers.X-Trace") == "t-1", NAME);"#,
    ),
    (
        "response headers read in any case",
        r#"let r = http::get("/response-headers?X-Flavour=oat");
           check(r.headers["x-flavour"] == "oat" && r.header("X-FLAVOUR") == "oat"
                 && r.header("Content-Type") == "application/json", NAME);"#,
    ),
    (
        "timeout: a slow answer fails as timeout",
        r#"let r = http::get("/delay/3", #{ timeout: 0.5, on_error: "return" });
           check(r.error_kind == "timeout", NAME);"#,
    ),
    (
        "streaming: chunked and until-close bodies",
        r#"let s = http::get("/stream/5");
           let b = http::get("/stream-bytes/3000?chunk_size=100&seed=7");
           check(s.text.split("\n").filter(|l| l != "").len() == 5 && b.bytes.len() == 3000, NAME);"#,
    ),
    (
        "binary body: bytes and content type",
        r#"let r = http::get("/bytes/1024");
           let p = http::get("/image/png");
           check(r.bytes.len() == 1024 && p.headers["content-type"] == "image/png", NAME);"#,
    ),
    (
        "ETag and If-None-Match: 304",
        r#"let r = http::get("/etag/abc", #{ headers: #{ "If-None-Match": "\"abc\"" }, expect: 304 });
           check(r.status == 304 && r.text == "", NAME);"#,
    ),
    (
        "If-Modified-Since: 304",
        r#"let r = http::get("/cache", #{ headers: #{ "If-Modified-Since": "Sat, 28 Nov 2026 00:00:00 GMT" }, expect: 304 });
           check(r.status == 304, NAME);"#,
    ),
    (
        "Range: 206 partial content",
        r#"let r = http::get("/range/1000", #{ headers: #{ "Range": "bytes=0-99" }, expect: 206 });
           check(r.status == 206 && r.bytes.len() == 100, NAME);"#,
    ),
    (
        "UTF-8 body",
        r#"let r = http::get("/encoding/utf8");
           check(r.text.contains("∮ E⋅da = Q"), NAME);"#,
    ),
];

fn script() -> String {
    let mut text = String::from("fn t() {\n");
    for (name, body) in BEHAVIOURS {
        text.push_str(&format!("    {{ const NAME = {name:?};\n{body}\n    }}\n"));
    }
    text.push_str("}\n");
    text
}

#[test]
fn httpbin_conformance() {
    let httpbin = Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("upload.txt"),
        "file from the script's folder\n",
    )
    .unwrap();
    let path = dir.path().join("conformance.rhai");
    std::fs::write(&path, script()).unwrap();
    let args = RunArgs {
        script: path,
        flags: RunFlags {
            host: Some(httpbin.url.clone()),
            quiet: true,
            iterations: Some(1),
            ..RunFlags::default()
        },
    };
    let plan = Plan::build(&args).expect("plan");
    let out = stampede::runner::run(plan, &Default::default(), &mut stampede::runner::Quiet)
        .expect("run");
    let checks = out.totals.checks();
    let mut failed = Vec::new();
    println!("| behaviour | result |\n|---|---|");
    for (name, _) in BEHAVIOURS {
        let passed = checks
            .get(*name)
            .is_some_and(|c| c.pass == 1 && c.fail == 0);
        println!("| {name} | {} |", if passed { "pass" } else { "FAIL" });
        if !passed {
            failed.push(*name);
        }
    }
    let errors: Vec<String> = out
        .totals
        .failures()
        .iter()
        .filter(|(k, _)| k.kind.to_string() != "timeout")
        .map(|(k, n)| format!("{n} × {} {}: {}", k.kind, k.name, k.message))
        .collect();
    assert!(
        failed.is_empty(),
        "failed: {failed:?}; failures: {errors:?}"
    );
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn cookies_are_per_user() {
    let httpbin = Httpbin::start();
    let users = 4;
    let out = common::run(
        r#"fn t() {
               let mine = `u${vu_id()}`;
               let set = http::get(`/cookies/set?who=${mine}`);
               check(set.json("cookies.who") == mine, "the jar holds my own cookie");
               let again = http::get("/cookies");
               check(again.json("cookies.who") == mine, "and sends it back to me alone");
           }"#,
        &httpbin.url,
        |a| {
            a.flags.users = Some(users);
            a.flags.iterations_per_user = Some(3);
        },
    );
    common::assert_checks(
        &out,
        &[
            "the jar holds my own cookie",
            "and sends it back to me alone",
        ],
        users * 3,
    );
}
