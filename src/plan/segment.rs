//! `--segment i/N`: one of N instances running its exact share of the whole test (k6's
//! execution segments, striped). Users are numbered over the whole test; segment `i` owns
//! the numbers `n` with `n mod N == i - 1`, so whatever any schedule wants at a moment, the
//! N segments run disjoint sets of users that add up to it exactly. Counts (iterations, rows,
//! ids) are striped the same way; an arrival rate is split evenly.

use std::fmt;

/// Which share of the test this instance runs: `index` of `count`, from 0 inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// 0-based (the flag is 1-based, as `2/3` reads).
    pub index: u64,
    pub count: u64,
}

impl Default for Segment {
    fn default() -> Self {
        Self::WHOLE
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}`: {reason} (e.g. --segment 2/3 runs the second of three equal shares)")]
pub struct SegmentError {
    pub text: String,
    pub reason: &'static str,
}

impl Segment {
    /// The whole test: one instance.
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    /// `i/N`, with `1 <= i <= N <= 1,000,000`.
    pub fn parse(text: &str) -> Result<Self, SegmentError> {
        let fail = |reason| SegmentError {
            text: text.to_owned(),
            reason,
        };
        let (i, n) = text.trim().split_once('/').ok_or(fail("not i/N"))?;
        let i: u64 = i.trim().parse().map_err(|_| fail("not i/N"))?;
        let n: u64 = n.trim().parse().map_err(|_| fail("not i/N"))?;
        if n == 0 || n > 1_000_000 {
            return Err(fail("N must be between 1 and 1,000,000"));
        }
        if i == 0 || i > n {
            return Err(fail("i counts from 1 to N"));
        }
        Ok(Self {
            index: i - 1,
            count: n,
        })
    }

    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// This segment's share of `total` things numbered from 0: those `n` with
    /// `n mod count == index`. The first `total mod count` segments take one more.
    pub fn share(self, total: u64) -> u64 {
        self.share_from(total, 0)
    }

    /// The same with the numbering starting at `first` (the things of one budget follow
    /// those of the budgets before it, so the segments take the remainders in turn).
    pub fn share_from(self, total: u64, first: u64) -> u64 {
        let start = first % self.count;
        striped_share(
            total,
            (self.index + self.count - start) % self.count,
            self.count,
        )
    }

    /// The `k`-th (from 0) of the numbers this segment owns in a sequence shared by all.
    pub fn nth(self, k: u64) -> u64 {
        k.saturating_mul(self.count).saturating_add(self.index)
    }

    /// The seed this segment uses for `--seed`: the seed itself for the whole test, else a
    /// mix of it and the segment (SplitMix64's finaliser), so segments draw different but
    /// reproducible values.
    pub fn seed(self, seed: u64) -> u64 {
        if self.is_whole() {
            return seed;
        }
        let mut z = seed ^ (self.index << 32 | self.count).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// How many of `total` things numbered from 0 go to stripe `rank` of `count` (those `n`
/// with `n mod count == rank`): the first `total mod count` stripes take one more. Segments
/// split the test this way, and workers (lanes) split a segment's pool.
pub fn striped_share(total: u64, rank: u64, count: u64) -> u64 {
    total / count + u64::from(rank < total % count)
}

impl Segment {
    /// Cuts the whole test's counts down to this segment's share: each scenario's shared
    /// iterations and the run's `--iterations`. Users need no change (the workers stripe
    /// them, see `runner::worker::Lane`). Fails where a share would need users a segment
    /// does not have: an arrival rate, or iterations to share, over fewer users than there
    /// are segments (the segments without one could not run their share).
    pub fn apply(
        self,
        scenarios: &mut [super::Scenario],
        iterations: &mut Option<u64>,
    ) -> Result<(), String> {
        if self.is_whole() {
            return Ok(());
        }
        let too_few = |what: &str, users: u64| {
            format!(
                "{what} has {users} users at most, which cannot be split into {} segments: \
                 each needs one; give it at least {} users",
                self.count, self.count
            )
        };
        let mut first = 0;
        for s in scenarios.iter_mut() {
            let shares =
                matches!(s.schedule, super::Schedule::Rate { .. }) || s.iterations.is_some();
            if shares && s.schedule.peak() < self.count {
                let what = format!("scenario `{}`", s.name);
                return Err(too_few(&what, s.schedule.peak()));
            }
            if let Some(n) = s.iterations {
                s.iterations = Some(self.share_from(n, first));
                first += n;
            }
        }
        if iterations.is_some() {
            // A run-wide budget races the scenarios' own limits in each segment: where a
            // segment cannot use its share, the whole would fall short of the number.
            if let Some(s) = scenarios
                .iter()
                .find(|s| s.iterations.is_some() || s.iterations_per_user.is_some())
            {
                return Err(format!(
                    "--iterations cannot be split into segments together with scenario `{}`'s \
                     own iterations; give the iterations in the scenarios instead",
                    s.name
                ));
            }
            let most = scenarios
                .iter()
                .map(|s| s.schedule.peak())
                .max()
                .unwrap_or(0);
            if most < self.count {
                return Err(too_few("the run's --iterations", most));
            }
        }
        *iterations = iterations.map(|n| self.share_from(n, first));
        Ok(())
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

impl std::str::FromStr for Segment {
    type Err = SegmentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_based_and_refuses_the_rest() {
        assert_eq!(
            Segment::parse("2/3").unwrap(),
            Segment { index: 1, count: 3 }
        );
        assert_eq!(Segment::parse("1/1").unwrap(), Segment::WHOLE);
        for bad in ["3/2", "0/2", "2", "a/b", "1/0", "-1/2", "1/2/3", ""] {
            assert!(Segment::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Segment::parse(" 2/3 ").unwrap().to_string(), "2/3");
    }

    #[test]
    fn shares_and_numbers_cover_the_whole_exactly_once() {
        for count in 1..=7 {
            for total in [0, 1, 2, 6, 7, 100, 1001] {
                let segs = (0..count).map(|index| Segment { index, count });
                assert_eq!(segs.clone().map(|s| s.share(total)).sum::<u64>(), total);
                let mut seen: Vec<u64> = segs
                    .clone()
                    .flat_map(|s| (0..s.share(total)).map(move |k| s.nth(k)))
                    .collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..total).collect::<Vec<_>>(), "{total} over {count}");
                for first in [1, 5, 13] {
                    let sum: u64 = segs.clone().map(|s| s.share_from(total, first)).sum();
                    assert_eq!(sum, total, "{total} over {count} from {first}");
                }
            }
        }
    }

    #[test]
    fn remainders_go_round_the_segments_budget_after_budget() {
        // Two budgets of 5 over 2 segments: 3 + 2 and 2 + 3, not 3 + 3 and 2 + 2.
        let (a, b) = (
            Segment { index: 0, count: 2 },
            Segment { index: 1, count: 2 },
        );
        assert_eq!((a.share_from(5, 0), b.share_from(5, 0)), (3, 2));
        assert_eq!((a.share_from(5, 5), b.share_from(5, 5)), (2, 3));
    }

    #[test]
    fn seeds_differ_by_segment_and_repeat() {
        let a = Segment { index: 0, count: 2 };
        let b = Segment { index: 1, count: 2 };
        assert_ne!(a.seed(7), b.seed(7));
        assert_eq!(a.seed(7), a.seed(7));
        assert_eq!(Segment::WHOLE.seed(7), 7);
    }
}
