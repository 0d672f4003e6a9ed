//! Control charts for one series over time: u-chart (events per exposure) and p-chart
//! (proportions), optionally with Laney's adjustment, and the special-cause signal rules.
//!
//! Monthly exposure differs from month to month, so each point has its own σᵢ (√(ū/nᵢ) or
//! √(p̄(1−p̄)/nᵢ)) and its own 3σ limits. With large denominators the Poisson/binomial σ is
//! too small and nearly every point "signals"; Laney's u′/p′ multiplies σᵢ by σ_z, the
//! moving-range spread of the points' z-scores (mean |zᵢ − zᵢ₋₁| / 1.128).

/// One subgroup (month): its count and its size (exposure, or trials for a p-chart).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Subgroup {
    /// Events (u-chart) or successes (p-chart).
    pub count: u64,
    /// Exposure (u-chart) or trials (p-chart); must be positive.
    pub size: f64,
}

/// Which chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// Rates: σᵢ = √(ū/nᵢ).
    U,
    /// Proportions: σᵢ = √(p̄(1−p̄)/nᵢ), limits clamped to [0, 1].
    P,
}

/// A point of a chart with its limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartPoint {
    /// count / size.
    pub value: f64,
    /// 3σ lower limit (floored at 0).
    pub lower: f64,
    /// 3σ upper limit (capped at 1 for a p-chart).
    pub upper: f64,
}

/// A whole chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlChart {
    /// Centre line: Σ counts / Σ sizes.
    pub centre: f64,
    /// Laney's σ_z (1 when not adjusted).
    pub sigma_z: f64,
    /// The points, in order.
    pub points: Vec<ChartPoint>,
}

fn sigma(kind: ChartKind, centre: f64, size: f64) -> f64 {
    match kind {
        ChartKind::U => (centre / size).sqrt(),
        ChartKind::P => (centre * (1.0 - centre) / size).sqrt(),
    }
}

/// Laney's σ_z: mean moving range of the z-scores / 1.128 (1 with fewer than two points or
/// when every σᵢ is 0).
pub fn laney_sigma_z(kind: ChartKind, centre: f64, subgroups: &[Subgroup]) -> f64 {
    let z: Vec<f64> = subgroups
        .iter()
        .map(|s| (s.count as f64 / s.size - centre) / sigma(kind, centre, s.size))
        .collect();
    if z.len() < 2 || z.iter().any(|z| !z.is_finite()) {
        return 1.0;
    }
    let moving: f64 = z.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
    moving / (z.len() - 1) as f64 / 1.128
}

/// The chart of `subgroups` (sizes must be positive); `None` when empty or a size is not.
pub fn chart(kind: ChartKind, subgroups: &[Subgroup], laney: bool) -> Option<ControlChart> {
    if subgroups.is_empty() || subgroups.iter().any(|s| s.size.is_nan() || s.size <= 0.0) {
        return None;
    }
    let total: u64 = subgroups.iter().map(|s| s.count).sum();
    let size: f64 = subgroups.iter().map(|s| s.size).sum();
    let centre = total as f64 / size;
    let sigma_z = if laney {
        laney_sigma_z(kind, centre, subgroups)
    } else {
        1.0
    };
    let cap = match kind {
        ChartKind::U => f64::INFINITY,
        ChartKind::P => 1.0,
    };
    let points = subgroups
        .iter()
        .map(|s| {
            let spread = 3.0 * sigma(kind, centre, s.size) * sigma_z;
            ChartPoint {
                value: s.count as f64 / s.size,
                lower: (centre - spread).max(0.0),
                upper: (centre + spread).min(cap),
            }
        })
        .collect();
    Some(ControlChart {
        centre,
        sigma_z,
        points,
    })
}

/// A special-cause rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A point beyond a 3σ limit.
    BeyondLimits,
    /// 8 or more consecutive points on one side of the centre line.
    Shift,
    /// 6 or more consecutive points each higher (or each lower) than the one before.
    Trend,
}

/// Which way a signal points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Above the centre, or rising.
    Up,
    /// Below the centre, or falling.
    Down,
}

/// A signal: a rule that fired over points `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    /// The rule.
    pub rule: Rule,
    /// Up or down.
    pub direction: Direction,
    /// First point of the signal (0-based).
    pub first: usize,
    /// Last point of the signal.
    pub last: usize,
}

/// Points in a row on one side of the centre line that make a shift.
pub const SHIFT_RUN: usize = 8;
/// Points in a row rising or falling that make a trend.
pub const TREND_RUN: usize = 6;

/// Every signal of `chart`, by rule then position: each point beyond its limits, and each
/// maximal run long enough to be a shift or a trend.
pub fn signals(chart: &ControlChart) -> Vec<Signal> {
    let mut out: Vec<Signal> = chart
        .points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let direction = if p.value > p.upper {
                Direction::Up
            } else if p.value < p.lower {
                Direction::Down
            } else {
                return None;
            };
            Some(Signal {
                rule: Rule::BeyondLimits,
                direction,
                first: i,
                last: i,
            })
        })
        .collect();
    let side = |i: usize| {
        let v = chart.points[i].value;
        (v != chart.centre).then_some(if v > chart.centre {
            Direction::Up
        } else {
            Direction::Down
        })
    };
    out.extend(runs(chart.points.len(), side, SHIFT_RUN, Rule::Shift));
    // A trend of n points is n−1 steps in one direction.
    let step = |i: usize| {
        let (a, b) = (chart.points[i].value, chart.points[i + 1].value);
        (a != b).then_some(if b > a {
            Direction::Up
        } else {
            Direction::Down
        })
    };
    let steps = chart.points.len().saturating_sub(1);
    out.extend(
        runs(steps, step, TREND_RUN - 1, Rule::Trend).map(|s| Signal {
            last: s.last + 1,
            ..s
        }),
    );
    out
}

/// Maximal runs of at least `min` consecutive indices with the same `Some` direction.
fn runs(
    len: usize,
    direction: impl Fn(usize) -> Option<Direction>,
    min: usize,
    rule: Rule,
) -> impl Iterator<Item = Signal> {
    let mut found = Vec::new();
    let mut start = 0;
    while start < len {
        let Some(d) = direction(start) else {
            start += 1;
            continue;
        };
        let mut end = start;
        while end + 1 < len && direction(end + 1) == Some(d) {
            end += 1;
        }
        if end + 1 - start >= min {
            found.push(Signal {
                rule,
                direction: d,
                first: start,
                last: end,
            });
        }
        start = end + 1;
    }
    found.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(values: &[f64]) -> ControlChart {
        ControlChart {
            centre: 5.0,
            sigma_z: 1.0,
            points: values
                .iter()
                .map(|&value| ChartPoint {
                    value,
                    lower: 0.0,
                    upper: 10.0,
                })
                .collect(),
        }
    }

    #[test]
    fn a_run_of_eight_above_is_a_shift_and_six_rising_a_trend() {
        let shift = flat(&[4.0, 6.0, 7.0, 6.0, 7.0, 6.0, 7.0, 6.0, 7.0, 4.0]);
        assert_eq!(
            signals(&shift),
            [Signal {
                rule: Rule::Shift,
                direction: Direction::Up,
                first: 1,
                last: 8
            }]
        );
        let trend = flat(&[5.0, 1.0, 2.0, 3.0, 4.0, 4.5, 11.0, 3.0]);
        let found = signals(&trend);
        assert!(found.contains(&Signal {
            rule: Rule::Trend,
            direction: Direction::Up,
            first: 1,
            last: 6
        }));
        assert!(found.contains(&Signal {
            rule: Rule::BeyondLimits,
            direction: Direction::Up,
            first: 6,
            last: 6
        }));
        // Five rising points are not a trend.
        assert!(signals(&flat(&[5.0, 1.0, 2.0, 3.0, 4.0, 4.5])).is_empty());
    }
}
