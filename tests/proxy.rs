//! Requests through a real forward proxy (Debian's tinyproxy, installed by `.ci/run`):
//! plain HTTP in absolute form, HTTPS through a CONNECT tunnel, credentials from the
//! proxy's URL, `--noproxy`, and a proxy that is not there. The target server and the
//! proxy's own log are the record.

mod common;

use std::process::{Child, Command, Stdio};

use common::bin::wait_until;
use common::tls::{Mode, pki, serve};
use common::{assert_checks, failures_of, run};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

/// tinyproxy on a free loopback port, requiring basic authentication, logging every
/// request line it receives.
struct Tinyproxy {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("tinyproxy.log");
        let config = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Connect\n\
                 MaxClients 50\nAllow 127.0.0.1\nBasicAuth {USER} {PASSWORD}\n",
                log.display()
            ),
        )
        .unwrap();
        let child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy (Debian package tinyproxy; .ci/run installs it)");
        wait_until("tinyproxy to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn url(&self, credentials: bool) -> String {
        match credentials {
            true => format!("http://{USER}:{PASSWORD}@127.0.0.1:{}", self.port),
            false => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// Request lines the proxy logged that contain `text`.
    fn requests(&self, text: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Request (file descriptor") && l.contains(text))
            .count()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SCRIPT: &str = r#"fn t() {
    let r = http::get("/through");
    check(r.status == 200 && r.json("version") == r.proto, "served");
}"#;

#[test]
fn plain_http_goes_to_the_proxy_in_absolute_form() {
    let proxy = Tinyproxy::start();
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::Cleartext);
    let out = run(SCRIPT, &url, |a| {
        a.flags.iterations = Some(5);
        a.flags.http.proxy = Some(proxy.url(true));
    });
    assert_checks(&out, &["served"], 5);
    assert_eq!(seen.requests(), 5);
    assert_eq!(proxy.requests(&format!("GET {url}/through HTTP/1.1")), 5);
}

#[test]
fn https_goes_through_a_connect_tunnel_and_still_negotiates_http2() {
    let proxy = Tinyproxy::start();
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::Tls);
    let out = run(
        r#"fn t() {
               let r = http::get("/through");
               check(r.status == 200 && r.proto == "HTTP/2.0", "h2 through the tunnel");
           }"#,
        &url,
        |a| {
            a.flags.users = Some(2);
            a.flags.iterations_per_user = Some(5);
            a.flags.http.proxy = Some(proxy.url(true));
            a.flags.http.cacert = Some(pki.ca_pem.clone());
        },
    );
    assert_checks(&out, &["h2 through the tunnel"], 10);
    assert_eq!(seen.http2.load(std::sync::atomic::Ordering::SeqCst), 10);
    // One tunnel per user's connection.
    let authority = url.trim_start_matches("https://");
    assert_eq!(proxy.requests(&format!("CONNECT {authority} ")), 2);
}

#[test]
fn a_proxy_that_wants_credentials_answers_407_and_the_target_sees_nothing() {
    let proxy = Tinyproxy::start();
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::Cleartext);
    let out = run(r#"fn t() { http::get("/through"); }"#, &url, |a| {
        a.flags.iterations = Some(2);
        a.flags.http.proxy = Some(proxy.url(false));
    });
    assert_eq!(
        failures_of(&out, "status"),
        2,
        "407 Proxy Authentication Required"
    );
    assert_eq!(seen.requests(), 0);

    let (tls_url, tls_seen) = serve(&pki, Mode::Tls);
    let out = run(r#"fn t() { http::get("/through"); }"#, &tls_url, |a| {
        a.flags.iterations = Some(2);
        a.flags.http.proxy = Some(proxy.url(false));
        a.flags.http.cacert = Some(pki.ca_pem.clone());
    });
    assert_eq!(failures_of(&out, "connect"), 2, "the tunnel was refused");
    assert_eq!(tls_seen.requests(), 0);
}

#[test]
fn noproxy_hosts_are_reached_directly() {
    let proxy = Tinyproxy::start();
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::Cleartext);
    let out = run(SCRIPT, &url, |a| {
        a.flags.iterations = Some(3);
        a.flags.http.proxy = Some(proxy.url(true));
        a.flags.http.noproxy = Some("127.0.0.1".into());
    });
    assert_checks(&out, &["served"], 3);
    assert_eq!(seen.requests(), 3);
    assert_eq!(proxy.requests("/through"), 0);
}

#[test]
fn a_proxy_that_is_not_there_is_a_connect_failure() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pki = pki();
    let (url, seen) = serve(&pki, Mode::Cleartext);
    let out = run(SCRIPT, &url, |a| {
        a.flags.iterations = Some(2);
        a.flags.http.proxy = Some(format!("http://127.0.0.1:{free}"));
    });
    assert_eq!(failures_of(&out, "connect"), 2);
    assert_eq!(seen.requests(), 0);
}
