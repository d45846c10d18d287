//! How many users should be running at each moment of a closed-model run: today's
//! "N users at a spawn rate", or k6-style stages (`ramping-vus`). Pure arithmetic on
//! durations, no runtime, so every rule is unit-tested; the workers' controller asks it
//! for the target now and for when the target next changes.

use std::time::Duration;

/// One stage: move linearly to `target` users over `duration` (k6's `stages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub duration: Duration,
    pub target: u64,
}

/// Users wanted over time.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `users` in all, user `i` (0-based) started at `i / rate` seconds.
    Spawn { users: u64, rate: f64 },
    /// From `start` users, through each stage in turn; after the last, its target.
    Stages { start: u64, stages: Vec<Stage> },
    /// The open model (k6's `constant-arrival-rate`): `per_second` iterations start on a
    /// schedule, each given to an idle user of a pool of `pre_allocated` that grows up to
    /// `max`; one that finds no idle user is dropped.
    Rate {
        rate: RateSpec,
        pre_allocated: u64,
        max: u64,
        when_busy: WhenBusy,
    },
    /// The script's `fn shape(elapsed)` says, once a second, how many users to run (and how
    /// fast to get there), or that the run ends; `peak` is the most it asked for when it was
    /// checked before traffic.
    Shape { peak: u64 },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StageError {
    #[error("`{0}` is not a stage like 30s:100 (duration:target users)")]
    Syntax(String),
    #[error("`{0}`: {1}")]
    Duration(String, crate::duration::DurationError),
    #[error("no stages given")]
    Empty,
    #[error("the stages never start a user (every target is 0)")]
    NoUsers,
}

/// Stages as one flag value (clap would read a `Vec` as repeated values).
#[derive(Debug, Clone, PartialEq)]
pub struct Stages(pub Vec<Stage>);

/// What an arrival does when every user of a full pool is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenBusy {
    /// It is dropped and counted (k6).
    #[default]
    Drop,
    /// It waits for the next user to become free and starts late; its latency counts from
    /// when it was due (wrk2's `-R`), so a stall shows in the corrected percentiles.
    Queue,
}

impl WhenBusy {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "drop" => Ok(Self::Drop),
            "queue" => Ok(Self::Queue),
            other => Err(format!("`{other}`: expected \"drop\" or \"queue\"")),
        }
    }
}

/// One stage of an arrival rate: move linearly to `target` iterations per second over
/// `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateStage {
    pub duration: Duration,
    pub target: f64,
}

/// Iterations started per second: constant (k6's `constant-arrival-rate`) or moving
/// linearly through stages from `start` (`ramping-arrival-rate`).
#[derive(Debug, Clone, PartialEq)]
pub enum RateSpec {
    Constant(f64),
    Stages {
        start: f64,
        stages: Vec<RateStage>,
    },
    /// The script's `fn shape(elapsed)` returns `#{ rate }`: asked once a second by the
    /// runner (it needs an engine); `peak` is the most it asked for before traffic.
    Shaped {
        peak: f64,
    },
}

impl RateSpec {
    /// `--rate`: `200/s` (constant), or stages `30s:200/s,1m:200/s,10s:0`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.contains(':') {
            return parse_rate(text).map(RateSpec::Constant);
        }
        let cleaned: Vec<String> = text
            .split(',')
            .map(|s| s.trim().trim_end_matches("/s").to_owned())
            .collect();
        let stages = parse_stages(&cleaned.join(","))
            .map_err(|e| format!("{e} (rate stages are DURATION:ITERATIONS_PER_SECOND)"))?;
        if let Some(s) = stages.iter().find(|s| s.target > 10_000_000) {
            return Err(format!(
                "`{text}`: {}/s is more than 10,000,000 iterations a second",
                s.target
            ));
        }
        Ok(RateSpec::Stages {
            start: 0.0,
            stages: stages
                .iter()
                .map(|s| RateStage {
                    duration: s.duration,
                    target: s.target as f64,
                })
                .collect(),
        })
    }

    /// Iterations per second at `t` after the start (for a shape, not known here: 0).
    pub fn at(&self, t: Duration) -> f64 {
        match self {
            RateSpec::Constant(r) => *r,
            RateSpec::Shaped { .. } => 0.0,
            RateSpec::Stages { start, stages } => {
                let mut from = *start;
                let mut elapsed = Duration::ZERO;
                for stage in stages {
                    if t < elapsed + stage.duration {
                        let f = (t - elapsed).as_secs_f64() / stage.duration.as_secs_f64();
                        return from + (stage.target - from) * f;
                    }
                    elapsed += stage.duration;
                    from = stage.target;
                }
                from
            }
        }
    }

    pub fn peak(&self) -> f64 {
        match self {
            RateSpec::Constant(r) | RateSpec::Shaped { peak: r } => *r,
            RateSpec::Stages { start, stages } => {
                stages.iter().map(|s| s.target).fold(*start, f64::max)
            }
        }
    }

    pub fn length(&self) -> Option<Duration> {
        match self {
            RateSpec::Constant(_) | RateSpec::Shaped { .. } => None,
            RateSpec::Stages { stages, .. } => Some(stages.iter().map(|s| s.duration).sum()),
        }
    }
}

/// Parses `--rate`: iterations per second as `200`, `200/s`, `12000/m`, `5/100ms`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let (n, per) = text.split_once('/').unwrap_or((text, "1s"));
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a rate like 200/s, 12000/m or 5/100ms"))?;
    let per = per.trim();
    let unit = if per.starts_with(|c: char| c.is_ascii_digit()) {
        per.to_owned()
    } else {
        format!("1{per}")
    };
    let unit = crate::duration::parse(&unit).map_err(|e| format!("`{text}`: {e}"))?;
    let rate = n / unit.as_secs_f64();
    if rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0 {
        Ok(rate)
    } else {
        Err(format!(
            "`{text}`: the rate must be more than 0 and at most 10,000,000/s"
        ))
    }
}

/// Parses `--stages "30s:100,1m:100,10s:0"`.
pub fn parse_stages(text: &str) -> Result<Vec<Stage>, StageError> {
    let stages = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (d, t) = s
                .rsplit_once(':')
                .ok_or_else(|| StageError::Syntax(s.to_owned()))?;
            let duration =
                crate::duration::parse(d).map_err(|e| StageError::Duration(s.to_owned(), e))?;
            let target = t
                .trim()
                .parse()
                .map_err(|_| StageError::Syntax(s.to_owned()))?;
            Ok(Stage { duration, target })
        })
        .collect::<Result<Vec<_>, _>>()?;
    check(0, &stages)?;
    Ok(stages)
}

/// What every stage list must satisfy, however it was written.
pub fn check(start: u64, stages: &[Stage]) -> Result<(), StageError> {
    if stages.is_empty() {
        return Err(StageError::Empty);
    }
    if start == 0 && stages.iter().all(|s| s.target == 0) {
        return Err(StageError::NoUsers);
    }
    Ok(())
}

/// Nudges times and values past float rounding, so a wake-up computed for the moment the
/// target changes is never a hair early (which would wake the controller for nothing).
const EPSILON: f64 = 1e-9;

impl Schedule {
    /// The most users this schedule ever wants at once.
    pub fn peak(&self) -> u64 {
        match self {
            Schedule::Spawn { users, .. } => *users,
            Schedule::Rate { max, .. } => *max,
            Schedule::Shape { peak } => *peak,
            Schedule::Stages { start, stages } => stages
                .iter()
                .map(|s| s.target)
                .max()
                .unwrap_or(0)
                .max(*start),
        }
    }

    /// How long the stages take (`None`: no end of its own).
    pub fn length(&self) -> Option<Duration> {
        match self {
            Schedule::Spawn { .. } | Schedule::Shape { .. } => None,
            Schedule::Rate { rate, .. } => rate.length(),
            Schedule::Stages { stages, .. } => Some(stages.iter().map(|s| s.duration).sum()),
        }
    }

    /// Users wanted at `t` after the start. On a ramp, the whole number the line has
    /// reached: rounded down going up, up going down, so each stage ends exactly on its
    /// target.
    pub fn target_at(&self, t: Duration) -> u64 {
        match self {
            // The pool is started at once; it grows on demand, not on a schedule.
            Schedule::Rate { pre_allocated, .. } => *pre_allocated,
            // Asked of the script by the controller, not known here.
            Schedule::Shape { .. } => 0,
            Schedule::Spawn { users, rate } => {
                let started = (t.as_secs_f64() * rate + EPSILON).floor() as u64 + 1;
                started.min(*users)
            }
            Schedule::Stages { start, stages } => {
                let (from, stage, into) = locate(*start, stages, t);
                let Some(stage) = stage else {
                    return from;
                };
                let v = value(from, stage, into);
                if stage.target >= from {
                    (v + EPSILON).floor() as u64
                } else {
                    (v - EPSILON).ceil() as u64
                }
            }
        }
    }

    /// The next moment after `t` at which [`Schedule::target_at`] changes, if any.
    pub fn next_change(&self, t: Duration) -> Option<Duration> {
        match self {
            Schedule::Rate { .. } | Schedule::Shape { .. } => None,
            Schedule::Spawn { users, rate } => {
                let now = self.target_at(t);
                (now < *users).then(|| secs(now as f64 / rate))
            }
            Schedule::Stages { start, stages } => {
                let mut from = *start;
                let mut stage_start = Duration::ZERO;
                for stage in stages {
                    let stage_end = stage_start + stage.duration;
                    if t < stage_end && stage.target != from {
                        let into = t.saturating_sub(stage_start);
                        let now = self.target_at(t);
                        let next = if stage.target > from {
                            now + 1
                        } else {
                            now - 1
                        };
                        let fraction = (next as f64 - from as f64).abs()
                            / (stage.target as f64 - from as f64).abs();
                        let at = secs(fraction * stage.duration.as_secs_f64());
                        if at > into {
                            return Some(stage_start + at.min(stage.duration));
                        }
                    }
                    from = stage.target;
                    stage_start = stage_end;
                }
                None
            }
        }
    }
}

fn secs(s: f64) -> Duration {
    crate::duration::from_secs(s.max(0.0) + EPSILON).unwrap_or(crate::duration::MAX)
}

/// The stage running at `t`: the users it starts from, the stage (`None` past the last)
/// and how far into it `t` is.
fn locate(start: u64, stages: &[Stage], t: Duration) -> (u64, Option<&Stage>, Duration) {
    let mut from = start;
    let mut elapsed = Duration::ZERO;
    for stage in stages {
        if t < elapsed + stage.duration {
            return (from, Some(stage), t - elapsed);
        }
        elapsed += stage.duration;
        from = stage.target;
    }
    (from, None, Duration::ZERO)
}

fn value(from: u64, stage: &Stage, into: Duration) -> f64 {
    let f = into.as_secs_f64() / stage.duration.as_secs_f64();
    from as f64 + (stage.target as f64 - from as f64) * f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn stages_parse_and_bad_ones_are_named() {
        let st = parse_stages("30s:100, 1m:100,10s:0").unwrap();
        assert_eq!(
            st,
            vec![
                Stage {
                    duration: s(30.0),
                    target: 100
                },
                Stage {
                    duration: s(60.0),
                    target: 100
                },
                Stage {
                    duration: s(10.0),
                    target: 0
                },
            ]
        );
        assert!(matches!(parse_stages("30s"), Err(StageError::Syntax(_))));
        assert!(matches!(
            parse_stages("soon:5"),
            Err(StageError::Duration(..))
        ));
        assert!(matches!(parse_stages("5s:-1"), Err(StageError::Syntax(_))));
        assert_eq!(parse_stages(""), Err(StageError::Empty));
        assert_eq!(parse_stages("5s:0"), Err(StageError::NoUsers));
    }

    #[test]
    fn a_ramp_reaches_each_target_exactly_and_moves_one_user_at_a_time() {
        let sched = Schedule::Stages {
            start: 0,
            stages: parse_stages("10s:10,5s:10,10s:0").unwrap(),
        };
        assert_eq!(sched.peak(), 10);
        assert_eq!(sched.length(), Some(s(25.0)));
        let at = |t| sched.target_at(s(t));
        assert_eq!(
            (at(0.0), at(0.999), at(1.0), at(9.5), at(10.0)),
            (0, 0, 1, 9, 10)
        );
        assert_eq!(
            (at(12.0), at(15.0), at(15.5), at(16.0), at(24.9)),
            (10, 10, 10, 9, 1)
        );
        assert_eq!((at(25.0), at(100.0)), (0, 0));
        // Walking the change points visits every value once.
        let mut t = Duration::ZERO;
        let mut seen = vec![sched.target_at(t)];
        while let Some(next) = sched.next_change(t) {
            assert!(next > t, "{next:?} after {t:?}");
            t = next;
            seen.push(sched.target_at(t));
        }
        let expected: Vec<u64> = (0..=10).chain((0..10).rev()).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn rates_parse_in_any_unit() {
        assert_eq!(parse_rate("200").unwrap(), 200.0);
        assert_eq!(parse_rate("200/s").unwrap(), 200.0);
        assert_eq!(parse_rate("12000/m").unwrap(), 200.0);
        assert_eq!(parse_rate("5/100ms").unwrap(), 50.0);
        for bad in ["0/s", "-3", "fast", "5/soon", "1e300"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_ramp_through_stages() {
        let r = RateSpec::parse("10s:100/s,5s:100,10s:0").unwrap();
        assert_eq!(
            (r.at(s(0.0)), r.at(s(5.0)), r.at(s(12.0))),
            (0.0, 50.0, 100.0)
        );
        assert_eq!((r.at(s(20.0)), r.at(s(30.0))), (50.0, 0.0));
        assert_eq!((r.peak(), r.length()), (100.0, Some(s(25.0))));
        assert_eq!(RateSpec::parse("200/s").unwrap(), RateSpec::Constant(200.0));
        assert!(RateSpec::parse("10s:fast").is_err());
    }

    #[test]
    fn spawning_at_a_rate_starts_one_user_every_interval() {
        let sched = Schedule::Spawn {
            users: 3,
            rate: 2.0,
        };
        assert_eq!(sched.target_at(Duration::ZERO), 1);
        assert_eq!(sched.next_change(Duration::ZERO).unwrap().as_millis(), 500);
        assert_eq!(sched.target_at(s(0.5)), 2);
        assert_eq!(sched.target_at(s(1.0)), 3);
        assert_eq!(sched.next_change(s(1.0)), None);
        assert_eq!(sched.length(), None);
    }
}
