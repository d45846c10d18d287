//! Coordinated omission: a server that stalls for 1 s every 5 s, driven at a constant
//! arrival rate by a pool too small to hide it. The service time (from when each request
//! was sent) hides the stall: the few users stuck in it send nothing else, so the requests
//! that should have met the stall are sent after it and look fast. The latency from the
//! intended start counts them from when they were due, as wrk2 does, and must match the
//! distribution computed for that schedule.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;

/// The stall repeats every `PERIOD`; a request that arrives in `[1 s, 2 s)` of a period (the
/// server's clock) is answered only at 2 s. A run of two whole periods that starts within
/// the first second of the server's life meets two whole stalls.
const PERIOD: Duration = Duration::from_secs(5);
const STALL: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(2));

fn start_stalling_server() -> (String, Arc<AtomicU64>) {
    let served = Arc::new(AtomicU64::new(0));
    let stall = |State((served, t0)): State<(Arc<AtomicU64>, Instant)>| async move {
        served.fetch_add(1, Ordering::Relaxed);
        let now = t0.elapsed();
        let period_start = PERIOD * (now.as_secs() / PERIOD.as_secs()) as u32;
        let phase = now - period_start;
        if phase >= STALL.0 && phase < STALL.1 {
            let until = t0 + period_start + STALL.1;
            tokio::time::sleep_until(until.into()).await;
        }
        "ok"
    };
    let app = Router::new()
        .route("/stall", get(stall))
        .with_state((served.clone(), Instant::now()));
    (common::serve(app).0, served)
}

#[test]
fn corrected_latency_matches_the_stall_while_the_service_time_hides_it() {
    let (url, served) = start_stalling_server();
    // 100 iterations a second for two periods, 4 users in all: in a stall the 4 are stuck
    // within 40 ms and the rest of the stall's arrivals wait in the queue (wrk2's model).
    let out = common::run(
        r#"
        const options = #{
            scenarios: #{
                steady: #{ executor: "constant-arrival-rate", rate: 100, duration: "10s",
                           pre_allocated_users: 4, max_users: 4, when_busy: "queue" },
            },
        };
        fn t() { http::get("/stall", #{ timeout: 10 }); }
        "#,
        &url,
        |_| {},
    );
    let stats = out.totals.get("GET", "/stall").expect("requests were made");
    assert_eq!(
        stats.requests,
        served.load(Ordering::Relaxed),
        "the server's count"
    );
    assert_eq!(stats.failures, 0);
    assert_eq!(out.totals.dropped_iterations, 0, "queued, not dropped");
    assert!(
        (990..=1001).contains(&stats.requests),
        "100/s for 10 s: {}",
        stats.requests
    );

    // Expected, for arrivals spread evenly over the run: a fifth of them (1 s of every 5)
    // meet a stall, arriving at a uniformly distributed moment u ∈ [0, 1) into it and
    // answered at its end, so their latency is 1 − u s; the other four fifths take about a
    // millisecond. The latency distribution is therefore F(x) = 0.8 + 0.2·x for x in
    // [0, 1 s], and its quantile q(p) = (p − 0.8) / 0.2 s for p ≥ 0.8:
    //   q(0.99) = 0.95 s, q(0.999) = 0.995 s.
    // (Draining the queue after a stall adds a few ms to the arrivals late in it, which
    // have the smallest latencies and do not reach these quantiles.)
    let quantile = |p: f64| (p - 0.8) / 0.2;
    let corrected = stats
        .corrected
        .as_ref()
        .expect("arrival rates are on a schedule");
    let measured = |h: &hdrhistogram::Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / 1e6;
    for (p, tolerance) in [(0.99, 0.05), (0.999, 0.03)] {
        let (want, got) = (quantile(p), measured(corrected, p));
        eprintln!(
            "p{}: expected {want:.3} s, corrected {got:.3} s, service {:.3} s",
            p * 100.0,
            measured(&stats.latency, p)
        );
        assert!(
            (got - want).abs() <= tolerance,
            "corrected p{}: expected {want:.3} s ± {tolerance}, measured {got:.3} s",
            p * 100.0
        );
    }
    // The service time saw the stall only in the 4 requests per stall that were in flight
    // when it began (8 of ~1000): its p99 is that of a healthy server.
    let service_p99 = measured(&stats.latency, 0.99);
    assert!(
        service_p99 < 0.1,
        "service-time p99 {service_p99:.3} s should hide the stall (expected ≈ ms, vs {:.3} s corrected)",
        quantile(0.99)
    );
}
