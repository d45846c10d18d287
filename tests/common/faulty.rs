//! A misbehaving HTTP/1.1 server for the fault suite: it keeps its own record of every
//! connection and every request it received (head and body), and answers each as a test
//! says — normally, with a reset, never, or with bytes no sane server sends. The tests
//! compare that record with what stampede reported, so they can see what it did not report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server saw, independently of the tool.
#[derive(Default)]
pub struct Record {
    pub connections: AtomicU64,
    pub requests: Mutex<Vec<Received>>,
    /// Bytes written by `Reply::Stream` answers before the client went away.
    pub streamed: AtomicU64,
}

impl Record {
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn received(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }
}

/// How to answer one request.
pub enum Reply {
    /// These bytes, then keep the connection for the next request.
    Send(Vec<u8>),
    /// A TCP reset (SO_LINGER 0, then close) instead of an answer.
    Reset,
    /// Nothing, ever: hold the connection open until the client closes it.
    Hang,
    /// These bytes first, then `block` over and over until the client goes away.
    Stream(Vec<u8>, Vec<u8>),
    /// These bytes one at a time, `pause` apart (a slow-drip response), kept alive.
    Drip(Vec<u8>, Duration),
}

/// `200 OK` with `body`, kept alive.
pub fn ok(body: &str) -> Reply {
    Reply::Send(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

pub struct Faulty {
    pub url: String,
    pub record: Arc<Record>,
    open: Arc<Mutex<Open>>,
    accepting: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Connections open now (a clone of each, by number), to cut them in [`Faulty::kill`];
/// `stopped` is set under the same lock, so none is added after the kill.
#[derive(Default)]
struct Open {
    stopped: bool,
    streams: std::collections::HashMap<u64, TcpStream>,
}

impl Faulty {
    /// Like a killed process: stops listening (the port is free when this returns) and
    /// cuts every open connection.
    pub fn kill(&self) {
        let Some(accepting) = self.accepting.lock().unwrap().take() else {
            return;
        };
        let mut open = self.open.lock().unwrap();
        open.stopped = true;
        for (_, s) in open.streams.drain() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        drop(open);
        // Wake the accept loop so it sees the flag and drops the listener.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        accepting.join().unwrap();
    }
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The answer for the `n`-th request (0-based, counted over the whole server).
pub type Behaviour = dyn Fn(&Received, u64) -> Reply + Send + Sync;

/// Starts the server on 127.0.0.1:0, a thread per connection.
pub fn start(behaviour: impl Fn(&Received, u64) -> Reply + Send + Sync + 'static) -> Faulty {
    start_on(
        "127.0.0.1:0",
        Arc::new(Record::default()),
        Arc::new(behaviour),
    )
}

/// Starts it again where a killed one was, adding to the same record.
pub fn restart(killed: &Faulty, behaviour: Arc<Behaviour>) -> Faulty {
    let addr = killed.url.trim_start_matches("http://");
    start_on(addr, killed.record.clone(), behaviour)
}

pub fn start_on(addr: &str, record: Arc<Record>, behaviour: Arc<Behaviour>) -> Faulty {
    let listener = TcpListener::bind(addr).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let open = Arc::new(Mutex::new(Open::default()));
    let (r, o) = (record.clone(), open.clone());
    let accepting = std::thread::spawn(move || {
        let next = Arc::new(AtomicU64::new(0));
        for stream in listener.incoming().flatten() {
            let id = {
                let mut open = o.lock().unwrap();
                if open.stopped {
                    return;
                }
                let id = r.connections.fetch_add(1, Ordering::SeqCst);
                open.streams.insert(id, stream.try_clone().unwrap());
                id
            };
            let (r, b, next, o) = (r.clone(), behaviour.clone(), next.clone(), o.clone());
            std::thread::spawn(move || {
                serve(stream, &r, &*b, &next);
                // The clone must go too, or the socket stays open: no close, no reset.
                o.lock().unwrap().streams.remove(&id);
            });
        }
    });
    Faulty {
        url,
        record,
        open,
        accepting: Mutex::new(Some(accepting)),
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Received> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        method,
        path,
        headers,
        body,
    })
}

fn serve(stream: TcpStream, record: &Record, behaviour: &Behaviour, next: &AtomicU64) {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let n = next.fetch_add(1, Ordering::SeqCst);
        let reply = behaviour(&request, n);
        record.requests.lock().unwrap().push(request);
        let stream = reader.get_mut();
        match reply {
            Reply::Send(bytes) => {
                if stream.write_all(&bytes).is_err() {
                    return;
                }
            }
            Reply::Reset => {
                let _ = socket2::SockRef::from(&*stream).set_linger(Some(Duration::ZERO));
                return;
            }
            Reply::Hang => {
                // Read (and discard) until the client closes: never answer.
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                return;
            }
            Reply::Drip(bytes, pause) => {
                for b in bytes {
                    std::thread::sleep(pause);
                    if stream.write_all(&[b]).is_err() {
                        return;
                    }
                }
            }
            Reply::Stream(head, block) => {
                let mut ok = stream.write_all(&head).is_ok();
                while ok {
                    ok = stream.write_all(&block).is_ok();
                    if ok {
                        record
                            .streamed
                            .fetch_add(block.len() as u64, Ordering::SeqCst);
                    }
                }
                return;
            }
        }
    }
}
