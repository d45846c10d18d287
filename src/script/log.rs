//! The script's `log::*` output: filtered by `--log-level`, written to stderr or `--log-file`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, clap::ValueEnum)]
pub enum Level {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    Off,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Off => "",
        }
    }
}

/// Cheap to clone; one sink per run shared by every worker thread.
#[derive(Clone)]
pub struct Logger {
    level: Level,
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
    started: Instant,
    /// The last lines written, for a reader that shows a tail (the web UI).
    tail: Option<Arc<Mutex<Tail>>>,
}

/// The last `capacity` log lines.
#[derive(Debug, Default)]
pub struct Tail {
    lines: std::collections::VecDeque<String>,
    capacity: usize,
}

impl Tail {
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }

    fn push(&mut self, line: String) {
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

impl Logger {
    pub fn new(level: Level, sink: Box<dyn Write + Send>) -> Self {
        Self {
            level,
            sink: Arc::new(Mutex::new(sink)),
            started: Instant::now(),
            tail: None,
        }
    }

    /// The same logger, also keeping its last `capacity` lines in the returned tail.
    pub fn with_tail(mut self, capacity: usize) -> (Self, Arc<Mutex<Tail>>) {
        let tail = Arc::new(Mutex::new(Tail {
            lines: Default::default(),
            capacity: capacity.max(1),
        }));
        self.tail = Some(tail.clone());
        (self, tail)
    }

    pub fn stderr(level: Level) -> Self {
        Self::new(level, Box::new(std::io::stderr()))
    }

    pub fn enabled(&self, level: Level) -> bool {
        level >= self.level && level != Level::Off
    }

    /// Writes one line: seconds since start, level, the virtual user, the message.
    pub fn log(&self, level: Level, vu: u64, message: &str) {
        if !self.enabled(level) {
            return;
        }
        let t = self.started.elapsed().as_secs_f64();
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        let line = format!("{t:9.3}s {:<5} vu={vu} {message}", level.label());
        // A log line that cannot be written must not fail the user's task.
        let _ = writeln!(sink, "{line}");
        drop(sink);
        if let Some(tail) = &self.tail {
            tail.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    }

    /// A `--trace` block: always written (whatever `--log-level`), to the same sink.
    pub fn trace(&self, vu: u64, block: &str) {
        let t = self.started.elapsed().as_secs_f64();
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(sink, "{t:9.3}s TRACE vu={vu} {block}");
    }

    pub fn flush(&self) {
        let _ = self.sink.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }
}
