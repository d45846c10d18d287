//! Response bodies in every content coding stampede offers (gzip, deflate — zlib-wrapped
//! and raw —, br, zstd) read as the JSON they hold; `Accept-Encoding` offers exactly these.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;
use common::{assert_checks, run};

fn encode(coding: &str, body: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        }
        "raw-deflate" => {
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            brotli::BrotliCompress(&mut &body[..], &mut out, &Default::default()).unwrap();
            out
        }
        "zstd" => {
            ruzstd::encoding::compress_to_vec(body, ruzstd::encoding::CompressionLevel::Fastest)
        }
        other => panic!("no coding {other}"),
    }
}

#[test]
fn every_offered_coding_is_decoded_and_offered() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = Router::new()
        .route(
            "/enc/{coding}",
            get(
                |State(seen): State<Arc<Mutex<Vec<String>>>>,
                 headers: HeaderMap,
                 Path(coding): Path<String>| async move {
                    let offered = headers[header::ACCEPT_ENCODING]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    seen.lock().unwrap().push(offered);
                    let body = format!(r#"{{"coding":"{coding}","items":[1,2,3]}}"#);
                    let sent_as = if coding == "raw-deflate" {
                        "deflate"
                    } else {
                        &coding
                    };
                    (
                        [
                            (header::CONTENT_ENCODING, sent_as.to_owned()),
                            (header::CONTENT_TYPE, "application/json".to_owned()),
                        ],
                        encode(&coding, body.as_bytes()),
                    )
                        .into_response()
                },
            ),
        )
        .with_state(seen.clone());
    let (url, _thread) = common::serve(app);
    let out = run(
        r#"fn t() {
               for c in ["gzip", "deflate", "raw-deflate", "br", "zstd"] {
                   let r = http::get(`/enc/${c}`, #{ name: "/enc/[coding]" });
                   check(r.json().coding == c && r.json().items.len() == 3, `${c} decoded`);
               }
           }"#,
        &url,
        |a| a.flags.iterations = Some(2),
    );
    assert_checks(
        &out,
        &[
            "gzip decoded",
            "deflate decoded",
            "raw-deflate decoded",
            "br decoded",
            "zstd decoded",
        ],
        2,
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 10);
    assert!(
        seen.iter().all(|s| s == "gzip, deflate, br, zstd"),
        "{seen:?}"
    );
}
