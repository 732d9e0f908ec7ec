//! Push delivery (RFC 8935): each SET is POSTed to the stream's receiver
//! as `application/secevent+jwt`, one at a time, in position order. The
//! cursor moves past the SETs the receiver answered once per batch (up to
//! `batch` SETs read at once), before a failure is recorded, and whenever
//! half the lease has gone by (which extends the lease), not after every
//! SET: each move is a write (its own commit on PostgreSQL), and one per
//! SET held a stream to about 1,500 SETs/s on PostgreSQL, where it now
//! pushes about 7,000/s (docs/BENCHMARKS.md).
//!
//! - 202 Accepted: delivered.
//! - 400 with an RFC 8935 §2.3 error (`{"err": …, "description": …}`):
//!   the receiver rejects that SET for good (a bad signature, a wrong
//!   audience…). Sending it again would only block the stream, so it is
//!   skipped: the error is kept as the stream's last error, and delivery
//!   goes on with the next SET.
//! - Anything else (a timeout, a refused connection, a 5xx, a 400 without
//!   an RFC 8935 error, a refused address): the SET is tried again later,
//!   with exponential backoff and jitter, without end; after
//!   `failing_after` failures in a row the stream shows as failing, its
//!   lag growing. Nothing is lost: delivery resumes from the cursor.
//!
//! Several replicas share the work through a lease per stream
//! (`scim_store::events::streams::claim_due_stream`): one replica delivers
//! a stream at a time, and a replica that lost its lease (it stalled past
//! it) stops at its next cursor move. A crash between a receiver's 202
//! and the cursor's move sends the SETs pushed since the last move again
//! (at most a batch): delivery is at least once, and receivers
//! deduplicate by `jti`.

use std::time::Duration;

use rand::Rng;
use scim_store::changes::Change;
use scim_store::events::streams::PushDue;
use scim_store::events::{keys, streams, Stream};
use scim_store::StoreError;

use crate::events::receiver::{self, read_capped};
use crate::events::set::{self, SET_MEDIA_TYPE};
use crate::events::Events;

/// How one push ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 202: delivered.
    Delivered,
    /// 400 with an RFC 8935 error: rejected for good (the description).
    Rejected(String),
    /// To retry later (why).
    Failed(String),
}

/// What one [`Deliverer::run_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// It claimed a stream and pushed (or tried to).
    Delivered,
    /// Push streams exist; none was due (or another replica holds it).
    NothingDue,
    /// No active push stream exists.
    NoStreams,
}

/// The push deliverer of one process. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Deliverer {
    events: Events,
    client: reqwest::Client,
    owner: String,
}

impl Deliverer {
    /// A deliverer for `events`, known to the other replicas by a new
    /// random owner id.
    pub fn new(events: Events) -> Result<Deliverer, reqwest::Error> {
        let config = events.config();
        let client = receiver::client(config.allow_private_receivers, config.push_timeout)?;
        Ok(Deliverer {
            events,
            client,
            owner: uuid::Uuid::new_v4().to_string(),
        })
    }

    /// Delivers until the process ends: whatever is due, then waits for a
    /// SCIM write of this process or `poll_interval`, whichever comes
    /// first. While no active push stream exists, it looks again only
    /// every `poll_interval`, not after each write: a write would cost a
    /// query for nothing, and a stream created meanwhile starts at the end
    /// of the log, so it misses nothing by waiting. Errors are logged and
    /// tried again after `poll_interval`.
    pub async fn run(self) {
        let poll_interval = self.events.config().poll_interval;
        loop {
            let signal = self.events.signal().notified();
            tokio::pin!(signal);
            signal.as_mut().enable();
            match self.run_once().await {
                Ok(Ran::Delivered) => continue,
                Ok(Ran::NothingDue) => {}
                Ok(Ran::NoStreams) => {
                    tokio::time::sleep(poll_interval).await;
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "event delivery failed"),
            }
            let _ = tokio::time::timeout(poll_interval, signal).await;
        }
    }

    /// Claims one stream that is due and pushes its pending SETs (up to
    /// `batch`).
    pub async fn run_once(&self) -> Result<Ran, StoreError> {
        let config = self.events.config();
        let clock = self.events.clock();
        let now = clock.now_text();
        let until = lease_end(clock, config.lease);
        let due = {
            let now = now.clone();
            self.events
                .store()
                .queue_read(move |c| streams::push_stream_due(c, &now))
                .await?
        };
        match due {
            PushDue::NoStreams => return Ok(Ran::NoStreams),
            PushDue::NotDue => return Ok(Ran::NothingDue),
            PushDue::Due => {}
        }
        let owner = self.owner.clone();
        let claimed = self
            .events
            .store()
            .queue_write(move |c| streams::claim_due_stream(c, &owner, &now, &until))
            .await?;
        let Some((stream, authorization)) = claimed else {
            return Ok(Ran::NothingDue);
        };
        let result = self.deliver(&stream, authorization.as_deref()).await;
        let (id, owner) = (stream.id.clone(), self.owner.clone());
        self.events
            .store()
            .queue_write(move |c| streams::release_lease(c, &id, &owner))
            .await?;
        result.map(|()| Ran::Delivered)
    }

    async fn deliver(
        &self,
        stream: &Stream,
        authorization: Option<&str>,
    ) -> Result<(), StoreError> {
        let config = self.events.config();
        let store = self.events.store();
        let (pending, read_to, key, issuer) = {
            let stream = stream.clone();
            let batch = config.batch;
            let config = config.clone();
            store
                .queue_read(move |c| {
                    let (pending, read_to) = streams::pending_changes(c, &stream, batch)?;
                    let issuer = set::stream_issuer(c, &config, &stream)?;
                    Ok((pending, read_to, keys::signing_key(c, &stream.id)?, issuer))
                })
                .await?
        };
        let clock = self.events.clock();
        let renew_every = config.lease / 2;
        let mut renew_at = clock.now() + renew_every;
        // The last SET answered whose position the cursor does not hold yet.
        let mut unrecorded = None;
        for change in &pending {
            let outcome = self
                .push_one(stream, authorization, &key, &issuer, change)
                .await;
            metrics::counter!(
                "scimd_event_deliveries_total",
                "outcome" => match outcome {
                    Outcome::Delivered => "delivered",
                    Outcome::Rejected(_) => "rejected",
                    Outcome::Failed(_) => "failed",
                }
            )
            .increment(1);
            match outcome {
                Outcome::Delivered => {}
                Outcome::Rejected(why) => {
                    let error = format!(
                        "SET {} rejected by the receiver: {why}",
                        set::jti(&stream.id, change.position)
                    );
                    tracing::warn!(stream = %stream.id, position = change.position, %error, "SET rejected; skipped");
                    let (id, now) = (stream.id.clone(), self.events.clock().now_text());
                    store
                        .queue_write(move |c| streams::record_rejected(c, &id, &error, &now))
                        .await?;
                }
                Outcome::Failed(why) => {
                    // What was answered before stays answered.
                    if let Some(position) = unrecorded {
                        if !self.advance(stream, position).await? {
                            return Ok(());
                        }
                    }
                    self.record_failure(stream, &why).await?;
                    return Ok(());
                }
            }
            unrecorded = Some(change.position);
            if clock.now() >= renew_at {
                if !self.advance(stream, change.position).await? {
                    return Ok(());
                }
                unrecorded = None;
                renew_at = clock.now() + renew_every;
            }
        }
        // Past the SETs answered, and past the changes the stream does not
        // select up to where it read.
        let to = read_to.max(pending.last().map_or(stream.cursor, |c| c.position));
        if unrecorded.is_some() || to > stream.cursor {
            self.advance(stream, to).await?;
        }
        Ok(())
    }

    /// Moves the cursor to `position` if this replica still holds the
    /// lease; `false` when it lost it.
    async fn advance(&self, stream: &Stream, position: i64) -> Result<bool, StoreError> {
        let clock = self.events.clock();
        let (id, owner, now) = (stream.id.clone(), self.owner.clone(), clock.now_text());
        let until = lease_end(clock, self.events.config().lease);
        let held = self
            .events
            .store()
            .queue_write(move |c| streams::record_delivered(c, &id, &owner, position, &now, &until))
            .await?;
        if !held {
            tracing::warn!(stream = %stream.id, "event stream lease lost; another replica delivers it");
        }
        Ok(held)
    }

    async fn record_failure(&self, stream: &Stream, why: &str) -> Result<(), StoreError> {
        let config = self.events.config();
        let clock = self.events.clock();
        let delay = backoff(config.retry_base, config.retry_max, stream.failures);
        let next = clock.now() + delay;
        tracing::warn!(stream = %stream.id, failures = stream.failures + 1, retry_in_ms = delay.as_millis() as u64, error = %why, "pushing a SET failed");
        let (id, owner, now, why) = (
            stream.id.clone(),
            self.owner.clone(),
            clock.now_text(),
            why.to_owned(),
        );
        let next = scim_core::datetime::format(next);
        self.events
            .store()
            .queue_write(move |c| streams::record_failure(c, &id, &owner, &why, &now, &next))
            .await
    }

    async fn push_one(
        &self,
        stream: &Stream,
        authorization: Option<&str>,
        key: &keys::SigningKey,
        issuer: &str,
        change: &Change,
    ) -> Outcome {
        let config = self.events.config();
        let Some(claims) = set::claims(stream, change, issuer) else {
            return Outcome::Delivered;
        };
        let token = match set::sign(&claims, key) {
            Ok(t) => t,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let Some(url) = stream.endpoint_url.as_deref() else {
            return Outcome::Failed("the stream has no endpoint_url".into());
        };
        let url = match reqwest::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return Outcome::Failed(format!("endpoint_url is not a URL: {e}")),
        };
        if let Err(refused) = receiver::check_literal(&url, config.allow_private_receivers) {
            return Outcome::Failed(refused.to_string());
        }
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, SET_MEDIA_TYPE)
            .header(reqwest::header::ACCEPT, "application/json")
            .body(token);
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(receiver::describe(&e)),
        };
        let status = response.status();
        let body = read_capped(response, config.max_response_bytes).await;
        classify(status.as_u16(), &body)
    }
}

/// What a receiver's answer means (RFC 8935 §2.2, §2.3).
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    match status {
        202 => Outcome::Delivered,
        400 => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(v) if v.get("err").and_then(|e| e.as_str()).is_some() => {
                let err = v["err"].as_str().unwrap_or_default();
                let description = v
                    .get("description")
                    .and_then(|d| d.as_str())
                    .unwrap_or_default();
                Outcome::Rejected(truncate(&format!("{err}: {description}"), 500))
            }
            _ => Outcome::Failed("HTTP 400 without an RFC 8935 error".into()),
        },
        other => Outcome::Failed(format!("HTTP {other} (202 expected)")),
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn lease_end(clock: &scim_core::Clock, lease: Duration) -> String {
    scim_core::datetime::format(clock.now() + lease)
}

/// The delay before retry number `failures + 1`: `base` doubled per
/// failure, capped at `max`, then scaled by a random factor in [0.5, 1]
/// (jitter: receivers that came back are not hit by every stream at once).
pub fn backoff(base: Duration, max: Duration, failures: i32) -> Duration {
    let exp = u32::try_from(failures.clamp(0, 30)).unwrap_or(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    full.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_per_rfc_8935() {
        assert_eq!(classify(202, b""), Outcome::Delivered);
        assert_eq!(
            classify(400, br#"{"err":"invalid_audience","description":"not us"}"#),
            Outcome::Rejected("invalid_audience: not us".into())
        );
        assert!(matches!(classify(400, b"<html>"), Outcome::Failed(_)));
        assert!(matches!(classify(200, b""), Outcome::Failed(_)));
        assert!(matches!(classify(500, b""), Outcome::Failed(_)));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for failures in 0..40 {
            // base doubled per failure: 1, 2, 4, 8, 16, 32 s, then the cap.
            let full = match failures {
                0..=5 => Duration::from_secs(1 << failures),
                _ => max,
            };
            let draws: Vec<Duration> = (0..200).map(|_| backoff(base, max, failures)).collect();
            for d in &draws {
                assert!(
                    *d >= full / 2 && *d <= full,
                    "{failures}: {d:?} is outside [{:?}, {full:?}]",
                    full / 2
                );
            }
            // Jitter: the delays differ, and some are well below the
            // full delay (each draw is under 0.9 of it with odds 4 in 5).
            assert!(
                draws.iter().any(|d| *d < full.mul_f64(0.9)),
                "{failures}: no delay below 0.9 × {full:?}: no jitter"
            );
            assert!(
                draws.iter().any(|d| *d != draws[0]),
                "{failures}: 200 equal delays: no jitter"
            );
        }
    }
}
