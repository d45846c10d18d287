//! `multipart: #{ … }`: a `multipart/form-data` body (file uploads). A text value is a
//! field; a map `#{ file: "photo.png", filename: "…", content_type: "…" }` is a file read
//! from the script's folder (the data files' sandbox), once per run and shared by every
//! user; a blob is a file part of its own bytes.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use rhai::{Dynamic, EvalAltResult, Map};

type Result<T> = std::result::Result<T, Box<EvalAltResult>>;

fn error(message: String) -> Box<EvalAltResult> {
    crate::script::script_error(message)
}

/// One part of the body.
enum Part {
    Text(String),
    File {
        filename: String,
        content_type: String,
        bytes: Bytes,
    },
}

/// The body and its `Content-Type` (with the boundary).
pub fn encode(value: Dynamic) -> Result<(String, Bytes)> {
    let map = value
        .try_cast::<Map>()
        .ok_or_else(|| error("request option `multipart` must be a map of fields".into()))?;
    let mut parts = Vec::with_capacity(map.len());
    for (name, value) in map {
        parts.push((name.to_string(), part(&name, value)?));
    }
    let boundary = format!("stampede-{:016x}", rand::random::<u64>());
    let mut body = BytesMut::new();
    for (name, part) in &parts {
        body.put_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text(text) => {
                body.put_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
                        quoted(name)
                    )
                    .as_bytes(),
                );
                body.put_slice(text.as_bytes());
            }
            Part::File {
                filename,
                content_type,
                bytes,
            } => {
                body.put_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                        quoted(name),
                        quoted(filename),
                        content_type.replace(['\r', '\n'], "")
                    )
                    .as_bytes(),
                );
                body.put_slice(bytes);
            }
        }
        body.put_slice(b"\r\n");
    }
    body.put_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((
        format!("multipart/form-data; boundary={boundary}"),
        body.freeze(),
    ))
}

/// A name or file name inside the header's quotes, escaped as browsers do (HTML's form
/// submission: `"` and line breaks percent-encoded).
fn quoted(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn part(name: &str, value: Dynamic) -> Result<Part> {
    if value.is_blob() {
        return Ok(Part::File {
            filename: name.to_owned(),
            content_type: "application/octet-stream".into(),
            bytes: Bytes::from(value.cast::<rhai::Blob>()),
        });
    }
    let Some(spec) = value.clone().try_cast::<Map>() else {
        return Ok(Part::Text(value.to_string()));
    };
    let text = |key: &str| spec.get(key).map(|v| v.to_string());
    let path = text("file").ok_or_else(|| {
        error(format!(
            "multipart field `{name}`: a map must name a `file` (and may give `filename`, `content_type`)"
        ))
    })?;
    let bytes = read(&path)?;
    let filename = text("filename").unwrap_or_else(|| {
        std::path::Path::new(&path)
            .file_name()
            .map_or_else(|| path.clone(), |f| f.to_string_lossy().into_owned())
    });
    Ok(Part::File {
        filename,
        content_type: text("content_type").unwrap_or_else(|| "application/octet-stream".into()),
        bytes,
    })
}

/// The file's bytes, read by the first request that sends it and shared after that.
fn read(path: &str) -> Result<Bytes> {
    let full = super::data::resolve(path)?;
    crate::vu::with_user(|u| {
        let mut loaded = u.run().data.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(any) = loaded.get(&full)
            && let Ok(bytes) = Arc::clone(any).downcast::<Bytes>()
        {
            return Ok((*bytes).clone());
        }
        let bytes = Bytes::from(
            std::fs::read(&full).map_err(|e| error(format!("multipart file `{path}`: {e}")))?,
        );
        // A data file loaded from the same path keeps its entry.
        loaded
            .entry(full)
            .or_insert_with(|| Arc::new(bytes.clone()));
        Ok(bytes)
    })
    .map_err(|e| error(e.to_string()))?
}
