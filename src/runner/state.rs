//! How a run is stopped from outside.

use tokio_util::sync::CancellationToken;

/// How a run is asked to stop from outside: a signal (SIGINT, SIGTERM) caught by the binary,
/// later the web UI. A handle, not a global, so tests and embedders own their own. Asking
/// once stops the run gracefully (users finish their request and run `on_stop`, every
/// output is written); what a second signal does is the caller's business (the binary
/// exits at once).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn request(&self) {
        self.token.cancel();
    }

    pub fn is_requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once a stop has been requested.
    pub async fn requested(&self) {
        self.token.cancelled().await
    }

    /// A token cancelled with this one (and cancellable on its own).
    pub fn child(&self) -> CancellationToken {
        self.token.child_token()
    }
}
