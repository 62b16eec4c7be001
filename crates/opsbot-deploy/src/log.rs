//! Where build and release output goes, line by line, while it is produced.

/// Receives output lines as they come (a build's commands, a host's steps). Cheap and
/// non-blocking: the receiver batches them into the store.
pub trait LogSink: Send + Sync {
    fn line(&self, text: &str);
}

/// Keeps nothing (benchmarks, checks whose output nobody reads).
pub struct Discard;

impl LogSink for Discard {
    fn line(&self, _text: &str) {}
}

/// Keeps every line in memory (tests, and the tail of a failed step).
#[derive(Default)]
pub struct Collect(pub std::sync::Mutex<Vec<String>>);

impl LogSink for Collect {
    fn line(&self, text: &str) {
        self.0.lock().expect("log lock").push(text.to_string());
    }
}

impl Collect {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("log lock").clone()
    }
}
