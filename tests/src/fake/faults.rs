//! Fault injection: rules matched by path prefix that answer an error status (with
//! `Retry-After`), add latency, or drop the connection. Probabilistic rules draw from a seeded
//! generator so a run with the same seed and the same request order fails the same way.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rng::SeedRng;

/// Where the Atlassian REST APIs live on the gateway (`api.atlassian.com/ex/{product}/{cloudId}/…`,
/// developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/#3--make-calls-to-the-api-using-the-access-token).
pub const API_PREFIX: &str = "/ex/";

/// One fault rule. Rules are checked in the order they were added; latency rules add up, the
/// first matching status or drop rule decides the answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Applies to requests whose path starts with this (e.g. `/ex/jira/`, `/oauth/token`, `/file/`).
    pub path_prefix: String,
    pub kind: FaultKind,
    /// How many times it fires; `None` = every time.
    #[serde(default)]
    pub times: Option<u32>,
    /// Chance that it fires on a matching request (0.0..=1.0).
    #[serde(default = "one")]
    pub probability: f64,
}

fn one() -> f64 {
    1.0
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer this status (JSON body like the gateway's), optionally with `Retry-After`.
    Status {
        status: u16,
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// Wait this long (real time) before handling the request.
    Latency { ms: u64 },
    /// Send the response body no faster than this (real time), e.g. an attachment download
    /// over a link of that bandwidth. The slowest matching rule wins.
    Bandwidth { bytes_per_sec: u64 },
    /// Close the connection without a response.
    Drop,
}

impl Fault {
    /// Answer `status` to every request under `prefix`.
    pub fn status(prefix: &str, status: u16) -> Self {
        Self::new(
            prefix,
            FaultKind::Status {
                status,
                retry_after_secs: None,
            },
        )
    }

    /// Delay every request under `prefix` by `ms` milliseconds.
    pub fn latency(prefix: &str, ms: u64) -> Self {
        Self::new(prefix, FaultKind::Latency { ms })
    }

    /// Delay every Atlassian API request (paths under [`API_PREFIX`]) by `ms` milliseconds:
    /// what `fake-atlassian --latency-ms` and `make bench` both inject. OAuth, the consent page,
    /// the admin API and the media host are not delayed: their calls are few per job (a token
    /// refresh) or bound by bandwidth (downloads), and the bench's latency bound counts API
    /// requests only.
    pub fn api_latency(ms: u64) -> Self {
        Self::latency(API_PREFIX, ms)
    }

    /// Send the response body of every request under `prefix` at `bytes_per_sec` at most
    /// (0 is taken as 1). With [`Fault::latency`] on the same prefix: a transfer's time is its
    /// latency plus its size over the bandwidth, as the bench models attachment downloads.
    pub fn bandwidth(prefix: &str, bytes_per_sec: u64) -> Self {
        Self::new(
            prefix,
            FaultKind::Bandwidth {
                bytes_per_sec: bytes_per_sec.max(1),
            },
        )
    }

    /// Close the connection of every request under `prefix` without answering.
    pub fn drop(prefix: &str) -> Self {
        Self::new(prefix, FaultKind::Drop)
    }

    /// Adds `Retry-After: secs` (status faults only).
    pub fn retry_after(mut self, secs: u64) -> Self {
        if let FaultKind::Status {
            retry_after_secs, ..
        } = &mut self.kind
        {
            *retry_after_secs = Some(secs);
        }
        self
    }

    /// Fire at most `n` times.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Fire with probability `p` (clamped to 0..=1).
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self
    }

    fn new(prefix: &str, kind: FaultKind) -> Self {
        Self {
            path_prefix: prefix.to_owned(),
            kind,
            times: None,
            probability: 1.0,
        }
    }

    /// Why this rule cannot be used, if it cannot.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(format!("probability {} is outside 0..=1", self.probability));
        }
        if let FaultKind::Status { status, .. } = self.kind
            && http::StatusCode::from_u16(status).is_err()
        {
            return Err(format!("{status} is not an HTTP status"));
        }
        Ok(())
    }
}

/// The decision for one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Decision {
    pub delay: Duration,
    /// The response body's pace, if a bandwidth rule matched.
    pub bytes_per_sec: Option<u64>,
    pub outcome: Option<Outcome>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    Status {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    Drop,
}

#[derive(Debug)]
pub(crate) struct FaultRules {
    rules: Vec<Fault>,
    rng: SeedRng,
}

impl FaultRules {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rules: Vec::new(),
            rng: SeedRng::derive(seed, "faults", 0),
        }
    }

    pub(crate) fn add(&mut self, mut fault: Fault) {
        if fault.validate().is_err() {
            // Programmatic callers get a usable rule rather than a panic.
            fault.probability = if fault.probability.is_nan() {
                0.0
            } else {
                fault.probability.clamp(0.0, 1.0)
            };
        }
        self.rules.push(fault);
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    pub(crate) fn decide(&mut self, path: &str) -> Decision {
        let mut decision = Decision::default();
        for rule in &mut self.rules {
            if !path.starts_with(&rule.path_prefix) || rule.times == Some(0) {
                continue;
            }
            if rule.probability < 1.0 && !self.rng.chance(rule.probability) {
                continue;
            }
            if let Some(n) = &mut rule.times {
                *n -= 1;
            }
            match rule.kind {
                FaultKind::Latency { ms } => {
                    decision.delay = decision.delay.saturating_add(Duration::from_millis(ms))
                }
                FaultKind::Bandwidth { bytes_per_sec } => {
                    let rate = bytes_per_sec.max(1);
                    decision.bytes_per_sec =
                        Some(decision.bytes_per_sec.map_or(rate, |r| r.min(rate)));
                }
                FaultKind::Status {
                    status,
                    retry_after_secs,
                } => {
                    decision.outcome = Some(Outcome::Status {
                        status,
                        retry_after_secs,
                    });
                    break;
                }
                FaultKind::Drop => {
                    decision.outcome = Some(Outcome::Drop);
                    break;
                }
            }
        }
        self.rules.retain(|r| r.times != Some(0));
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_limits_how_often_a_rule_fires() {
        let mut rules = FaultRules::new(1);
        rules.add(Fault::status("/ex/", 429).retry_after(2).times(2));
        let hit = Some(Outcome::Status {
            status: 429,
            retry_after_secs: Some(2),
        });
        assert_eq!(rules.decide("/ex/jira/x").outcome, hit);
        assert_eq!(rules.decide("/other").outcome, None);
        assert_eq!(rules.decide("/ex/jira/x").outcome, hit);
        assert_eq!(rules.decide("/ex/jira/x").outcome, None);
    }

    #[test]
    fn the_slowest_bandwidth_rule_paces_the_body() {
        let mut rules = FaultRules::new(1);
        rules.add(Fault::bandwidth("/file/", 100));
        rules.add(Fault::bandwidth("/file/a", 40));
        rules.add(Fault::latency("/file/", 3));
        let d = rules.decide("/file/a1");
        assert_eq!(d.bytes_per_sec, Some(40));
        assert_eq!(d.delay, Duration::from_millis(3));
        assert_eq!(d.outcome, None);
        assert_eq!(rules.decide("/file/b").bytes_per_sec, Some(100));
        assert_eq!(rules.decide("/ex/x").bytes_per_sec, None);
    }

    #[test]
    fn latency_adds_up_before_the_deciding_rule() {
        let mut rules = FaultRules::new(1);
        rules.add(Fault::latency("/", 5));
        rules.add(Fault::latency("/ex/", 7));
        rules.add(Fault::drop("/ex/"));
        let d = rules.decide("/ex/a");
        assert_eq!(d.delay, Duration::from_millis(12));
        assert_eq!(d.outcome, Some(Outcome::Drop));
    }

    #[test]
    fn probability_is_reproducible_for_a_seed() {
        let run = |seed| {
            let mut rules = FaultRules::new(seed);
            rules.add(Fault::status("/", 503).probability(0.3));
            (0..200)
                .filter(|_| rules.decide("/x").outcome.is_some())
                .count()
        };
        assert_eq!(run(9), run(9));
        let n = run(9);
        assert!((30..90).contains(&n), "{n}");
    }

    #[test]
    fn fault_json_shape_round_trips() {
        let f: Fault =
            serde_json::from_str(r#"{"path_prefix":"/ex/","kind":{"type":"status","status":429,"retry_after_secs":3},"times":1}"#)
                .unwrap();
        assert_eq!(f, Fault::status("/ex/", 429).retry_after(3).times(1));
    }
}
