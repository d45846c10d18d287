//! The web UI in a real browser: headless Chromium driven through WebDriver (chromedriver,
//! installed by `.ci/run` from Debian's `chromium-driver`), against the demo API with its
//! race on. The seed story, clicked through: start, see the read-back failures, change the
//! users mid-run (the server sees them), stop, and a report that matches the server's count.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use stampede::cli::RunFlags;
use stampede::web::{Script, Session, WebConfig, WebServer};

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian package chromium-driver; .ci/run installs it)");
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1000"] }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(client) => return client,
            // chromedriver is still starting.
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no WebDriver session: {e}"),
        }
    }
}

fn web_ui(script: Script, host: &str) -> WebServer {
    let flags = RunFlags {
        host: Some(host.to_owned()),
        ..RunFlags::default()
    };
    let config = WebConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        auth: None,
    };
    stampede::web::spawn(Session::new(script, flags).unwrap(), &config).unwrap()
}

/// A browser on the UI's page, once the page has its first state.
struct Page {
    client: Client,
    rt: tokio::runtime::Runtime,
    _driver: Driver,
}

fn open_page(ui: &WebServer) -> Page {
    let driver = chromedriver();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(async {
        let client = browser(&driver).await;
        client.goto(&ui.url()).await.unwrap();
        until(
            &client,
            "the page to connect",
            "return document.getElementById('status').textContent === 'ready'",
        )
        .await;
        client
    });
    Page {
        client,
        rt,
        _driver: driver,
    }
}

/// Evaluates `js` in the page until it returns something truthy (at most 20 s).
async fn until(client: &Client, what: &str, js: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = client.execute(js, vec![]).await.unwrap();
        if !(v.is_null() || v == false || v == 0 || v == "") {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn set(client: &Client, id: &str, value: &str) {
    let input = client.find(Locator::Id(id)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

/// The cells of a table's body rows, as text.
const ROWS: &str = "return [...document.querySelectorAll(arguments[0] + ' tbody tr')]
    .map(tr => [...tr.children].map(td => td.textContent));";

async fn rows(client: &Client, table: &str) -> Vec<Vec<String>> {
    let v = client.execute(ROWS, vec![json!(table)]).await.unwrap();
    serde_json::from_value(v).unwrap()
}

#[test]
fn the_seed_story_in_the_browser() {
    let demo = stampede::demo::spawn(0, true).unwrap();
    let ui = web_ui(
        Script::Inline {
            name: stampede::demo::CITIES_SCRIPT_NAME.into(),
            source: stampede::demo::CITIES_SCRIPT.into(),
        },
        &demo.url(),
    );
    let page = open_page(&ui);
    let client = &page.client;
    page.rt.block_on(async {
        let host = client.find(Locator::Id("f-host")).await.unwrap();
        assert_eq!(host.prop("value").await.unwrap().unwrap(), demo.url(), "prefilled");

        set(client, "f-users", "4").await;
        set(client, "f-rate", "100").await;
        client.find(Locator::Id("start")).await.unwrap().click().await.unwrap();

        // The read-backs that come back as another user's appear as failures.
        until(client, "read-back failures in the statistics",
            "return [...document.querySelectorAll('#stats tbody tr')].some(tr =>
                tr.children[1].textContent === '/cities/[id]' && +tr.children[3].textContent > 0)").await;
        assert_eq!(demo.stats.snapshot()["POST /auth/register"], 4);

        // Change the users while it runs, as Locust's "Edit" does.
        client.find(Locator::Id("new-test")).await.unwrap().click().await.unwrap();
        set(client, "f-users", "7").await;
        client.find(Locator::Id("edit")).await.unwrap().click().await.unwrap();
        until(client, "seven users", "return document.getElementById('m-users').textContent === '7'").await;
        assert_eq!(demo.stats.snapshot()["POST /auth/register"], 7, "the server saw three more users");

        // STAMPEDE_SCREENSHOT=docs/web-ui: the pictures in the docs, after 15 s of load.
        let pictures = std::env::var("STAMPEDE_SCREENSHOT").ok();
        if let Some(prefix) = &pictures {
            tokio::time::sleep(Duration::from_secs(15)).await;
            std::fs::write(format!("{prefix}-stats.png"), client.screenshot().await.unwrap()).unwrap();
        }
        // The charts draw complete seconds only.
        client.find(Locator::Css("button[data-tab=charts]")).await.unwrap().click().await.unwrap();
        until(client, "a drawn chart",
            "const p = document.querySelector('#chart-rps polyline'); return p && p.getAttribute('points').split(' ').length >= 2").await;
        if let Some(prefix) = &pictures {
            std::fs::write(format!("{prefix}-charts.png"), client.screenshot().await.unwrap()).unwrap();
        }
        client.find(Locator::Css("button[data-tab=failures]")).await.unwrap().click().await.unwrap();
        let failures = rows(client, "#failures").await;
        assert!(failures.iter().any(|r| r[3] == "/cities/[id]"), "{failures:?}");

        client.find(Locator::Id("stop")).await.unwrap().click().await.unwrap();
        until(client, "the test to stop", "return document.getElementById('status').textContent === 'stopped'").await;
        let stats = rows(client, "#stats").await;
        let total = stats.last().unwrap();
        assert_eq!(total[1], "Aggregated");

        // The JSON download counts what the server served.
        let report: Value = reqwest::get(format!("{}/api/download/json", ui.url()))
            .await.unwrap().json().await.unwrap();
        let served: u64 = demo.stats.snapshot().values().sum();
        assert_eq!(report["aggregated"]["requests"].as_u64().unwrap(), served);
        assert_eq!(total[2], served.to_string(), "the page's total is the server's");
        client.clone().close().await.unwrap();
    });
    ui.stop();
}

#[test]
fn text_from_the_script_and_the_target_stays_text() {
    let demo = stampede::demo::spawn(0, false).unwrap();
    let evil = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>";
    let source =
        format!("fn t() {{ log::warn(`{evil}`); check(false, `{evil}`); fail(`{evil}`); }}\n");
    let ui = web_ui(
        Script::Inline {
            name: "inject.rhai".into(),
            source,
        },
        &demo.url(),
    );
    let page = open_page(&ui);
    let client = &page.client;
    page.rt.block_on(async {
        set(client, "f-users", "1").await;
        client.find(Locator::Id("start")).await.unwrap().click().await.unwrap();
        until(client, "the failure", "return document.querySelectorAll('#failures tbody tr').length > 0").await;
        client.find(Locator::Css("button[data-tab=failures]")).await.unwrap().click().await.unwrap();
        let failures = rows(client, "#failures").await;
        assert!(failures.iter().any(|r| r[4].contains(evil)), "shown as text: {failures:?}");
        let log = client.execute("return document.getElementById('log').textContent", vec![]).await.unwrap();
        assert!(log.as_str().unwrap().contains(evil), "the log tail shows it: {log}");
        let checks = rows(client, "#checks").await;
        assert_eq!(checks[0][0], evil);
        let pwned = client.execute("return window.__pwned === undefined && document.querySelectorAll('#failures img, #checks img, #log img, #failures script').length === 0", vec![]).await.unwrap();
        assert_eq!(pwned, true, "the markup ran or became elements");
        client.find(Locator::Id("stop")).await.unwrap().click().await.unwrap();
        until(client, "the stop", "return document.getElementById('status').textContent === 'stopped'").await;
        client.clone().close().await.unwrap();
    });
    ui.stop();
}

#[test]
fn an_arrival_rate_from_the_form_and_changed_while_it_runs() {
    let demo = stampede::demo::spawn(0, false).unwrap();
    let ui = web_ui(
        Script::Inline {
            name: "health.rhai".into(),
            source: "fn t() { http::get(\"/health\"); }\n".into(),
        },
        &demo.url(),
    );
    let page = open_page(&ui);
    let client = &page.client;
    page.rt.block_on(async {
        let visible = "return ['users-label', 'arrival-label'].map(id => !document.getElementById(id).hidden)";
        assert_eq!(client.execute(visible, vec![]).await.unwrap(), json!([true, false]));
        client.find(Locator::Css("input[name=model][value=rate]")).await.unwrap().click().await.unwrap();
        assert_eq!(client.execute(visible, vec![]).await.unwrap(), json!([false, true]));
        set(client, "f-arrival", "30").await;
        set(client, "f-max", "10").await;
        client.find(Locator::Id("start")).await.unwrap().click().await.unwrap();
        until(client, "about 30 iterations a second",
            "const n = +document.getElementById('m-arrivals').textContent; return n >= 27 && n <= 33 && document.getElementById('m-target').textContent === '30'").await;

        client.find(Locator::Id("new-test")).await.unwrap().click().await.unwrap();
        assert_eq!(client.execute(visible, vec![]).await.unwrap(), json!([false, true]), "the rate is what changes");
        set(client, "f-arrival", "80").await;
        client.find(Locator::Id("edit")).await.unwrap().click().await.unwrap();
        until(client, "about 80 iterations a second",
            "const n = +document.getElementById('m-arrivals').textContent; return n >= 72 && n <= 88 && document.getElementById('m-target').textContent === '80'").await;
        client.find(Locator::Id("stop")).await.unwrap().click().await.unwrap();
        until(client, "the stop", "return document.getElementById('status').textContent === 'stopped'").await;
        client.clone().close().await.unwrap();
    });
    let report: Value = page.rt.block_on(async {
        reqwest::get(format!("{}/api/download/json", ui.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let served = demo.stats.snapshot()["GET /health"];
    assert_eq!(report["aggregated"]["requests"].as_u64().unwrap(), served);
    ui.stop();
}
