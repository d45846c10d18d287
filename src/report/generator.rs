//! Whether a run measured the server or the generator. Latency ends when a response's last
//! bytes reached the socket (the kernel's stamp), so a busy generator no longer inflates
//! it; but the time a response then waited for its user's task (queueing) says the
//! generator was late to read it, and so late to send what came next. Large queueing, or
//! workers near the end of their CPU, is said in the live view and the summary with what
//! to do about it (Locust warns on CPU, k6 on dropped iterations).

use std::time::Duration;

use crate::metrics::{QUEUEING, Totals};

/// Queueing p99 above this says the generator, not the server, set the pace.
pub const QUEUEING_P99_LIMIT: Duration = Duration::from_millis(1);
/// Worker CPU above this share of the workers' cores.
pub const CPU_LIMIT: f64 = 0.9;

/// The p99 of generator queueing over the run so far, if any response was timed.
pub fn queueing_p99(totals: &Totals) -> Option<Duration> {
    let h = &totals.phases.as_ref()?[QUEUEING];
    (!h.is_empty()).then(|| Duration::from_micros(h.value_at_quantile(0.99)))
}

/// What to say when the generator is the bottleneck: queueing p99 over the limit, or the
/// workers' CPU (a share of their cores, when known) over it; `None` otherwise.
pub fn warning(totals: &Totals, cpu: Option<f64>) -> Option<String> {
    let p99 = queueing_p99(totals).filter(|p| *p > QUEUEING_P99_LIMIT);
    let busy = cpu.filter(|c| *c > CPU_LIMIT);
    if p99.is_none() && busy.is_none() {
        return None;
    }
    let mut why = Vec::new();
    if let Some(p) = p99 {
        why.push(format!(
            "responses waited {:.2} ms (p99) in the socket before stampede read them",
            p.as_secs_f64() * 1000.0
        ));
    }
    if let Some(c) = busy {
        why.push(format!("the workers used {:.0}% of their CPU", c * 100.0));
    }
    Some(format!(
        "warning: the generator is the bottleneck: {}. Latency still ends at the socket, but \
         requests went out late. Use more --workers, fewer users per core, or more instances \
         (--segment); a threshold `queueing_p99 < 1ms` fails such a run.",
        why.join("; ")
    ))
}

/// The same in one short line, for the terminal's redrawn block.
pub fn short_warning(totals: &Totals, cpu: Option<f64>) -> Option<String> {
    warning(totals, cpu)?;
    let p99 = queueing_p99(totals).map_or(0.0, |p| p.as_secs_f64() * 1000.0);
    let cpu = cpu.map_or(String::new(), |c| format!(", CPU {:.0}%", c * 100.0));
    Some(format!(
        "  generator busy (queueing p99 {p99:.2} ms{cpu}): more --workers or instances"
    ))
}

/// The process's CPU time so far (user + system), for the workers' share of their cores.
pub fn process_cpu() -> Option<Duration> {
    cpu_time::ProcessTime::try_now()
        .ok()
        .map(|t| t.as_duration())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Recorder;

    #[test]
    fn warns_on_queueing_or_cpu_and_not_otherwise() {
        let mut quiet = Totals::default();
        let mut r = Recorder::default();
        r.phases([0, 0, 10, 200, 5, 50]);
        quiet.merge(1, 1, r.take());
        assert_eq!(warning(&quiet, Some(0.5)), None);
        assert!(
            warning(&quiet, Some(0.95))
                .unwrap()
                .contains("95% of their CPU")
        );
        let mut late = Totals::default();
        r.phases([0, 0, 10, 200, 5, 5_000]);
        late.merge(1, 1, r.take());
        let said = warning(&late, None).unwrap();
        assert!(said.contains("5.00 ms (p99)"), "{said}");
        assert!(said.contains("--workers"), "{said}");
    }
}
