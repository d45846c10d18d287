//! `--start-at`: instances started by an orchestrator at slightly different moments wait
//! for one agreed moment, so their load begins together. One that arrives late starts at
//! once and says by how much.

use std::time::{Duration, SystemTime};

use super::{Observer, Shutdown};

/// Lateness below this is the clocks' and the scheduler's, not worth a word.
const ON_TIME: Duration = Duration::from_millis(10);

/// Waits until `at` by the wall clock (or a requested shutdown) and returns how late the
/// start is: zero when it waited.
pub fn wait_until(
    at: SystemTime,
    shutdown: &Shutdown,
    observer: &mut dyn Observer,
) -> anyhow::Result<Duration> {
    let stamp = humantime::format_rfc3339_millis(at);
    match at.duration_since(SystemTime::now()) {
        Ok(wait) => {
            observer.warn(&format!(
                "waiting {:.1} s for --start-at {stamp}",
                wait.as_secs_f64()
            ));
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()?
                .block_on(async {
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.requested() => {}
                    }
                });
            Ok(Duration::ZERO)
        }
        Err(late) => {
            let late = late.duration();
            if late >= ON_TIME {
                observer.warn(&format!(
                    "warning: started {:.3} s after --start-at {stamp}: this instance's load \
                     begins late",
                    late.as_secs_f64()
                ));
            }
            Ok(late)
        }
    }
}
