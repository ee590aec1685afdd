//! Checkpoints: secret, stable positions in a video's timeline, mapped to byte offsets.
//!
//! Checkpoint i sits at a random-looking place inside the i-th of K equal slices of the timeline,
//! derived from HMAC(secret, video id): different on every server, stable across restarts, never
//! sent to clients, and spread so that reaching M of them means watching about M/K of the video.

use ring::hmac;

use crate::media::container::TimeIndex;

/// One checkpoint: a media time and the byte where that time's data starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// Media time in milliseconds.
    pub(crate) ms: u64,
    /// Byte offset in the file.
    pub(crate) byte: u64,
}

/// A video's checkpoints and the mapping between its bytes and its media time.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Sorted by time (and so by byte).
    pub(crate) checkpoints: Vec<Checkpoint>,
    duration_ms: u64,
    size: u64,
    index: TimeIndex,
}

impl Plan {
    /// Derives the checkpoints of `video_id`.
    ///
    /// Without an index, time is taken as proportional to bytes; without a duration, media time
    /// is unknown and the pace rule cannot apply (every delivery looks paced).
    pub(crate) fn derive(
        secret: &hmac::Key,
        video_id: &str,
        k: u32,
        duration_ms: Option<u64>,
        size: u64,
        index: TimeIndex,
    ) -> Self {
        let duration_ms = duration_ms.unwrap_or(0);
        let mut plan = Self { checkpoints: Vec::with_capacity(k as usize), duration_ms, size, index };
        for i in 0..k {
            let tag = hmac::sign(secret, format!("checkpoint\0{video_id}\0{i}").as_bytes());
            let random = u64::from_be_bytes(tag.as_ref()[..8].try_into().expect("8 bytes"));
            // Keep 5% clear of each slice edge so neighbours never sit on one chunk.
            let within = 0.05 + 0.9 * (random as f64 / u64::MAX as f64);
            let fraction = (f64::from(i) + within) / f64::from(k);
            let checkpoint = match (plan.duration_ms, plan.index.is_empty()) {
                (0, _) => Checkpoint { ms: 0, byte: (fraction * size as f64) as u64 },
                (duration, false) => {
                    let ms = (fraction * duration as f64) as u64;
                    Checkpoint { ms, byte: plan.index.byte_at(ms).unwrap_or(0) }
                }
                (duration, true) => Checkpoint {
                    ms: (fraction * duration as f64) as u64,
                    byte: (fraction * size as f64) as u64,
                },
            };
            plan.checkpoints.push(checkpoint);
        }
        plan
    }

    /// The media time at `byte`: through the index, else in proportion to the file.
    pub(crate) fn time_at(&self, byte: u64) -> u64 {
        if self.duration_ms == 0 {
            return 0;
        }
        match self.index.time_at(byte) {
            Some(ms) if !self.index.is_empty() => ms,
            _ => (byte as f64 / self.size.max(1) as f64 * self.duration_ms as f64) as u64,
        }
    }

    /// The duration, 0 when unknown.
    pub(crate) fn duration_ms(&self) -> u64 {
        self.duration_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::container::IndexPoint;

    fn secret(s: &[u8]) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, s)
    }

    fn index() -> TimeIndex {
        // A 100 s video, 10 kB per second.
        TimeIndex::new((0..100).map(|s| IndexPoint { byte: s * 10_000, ms: s * 1000 }).collect())
    }

    #[test]
    fn checkpoints_are_spread_stable_and_secret_dependent() {
        let a = Plan::derive(&secret(b"one"), "vid", 10, Some(100_000), 1_000_000, index());
        let again = Plan::derive(&secret(b"one"), "vid", 10, Some(100_000), 1_000_000, index());
        let other = Plan::derive(&secret(b"two"), "vid", 10, Some(100_000), 1_000_000, index());
        assert_eq!(a.checkpoints, again.checkpoints);
        assert_ne!(a.checkpoints, other.checkpoints);
        for (i, c) in a.checkpoints.iter().enumerate() {
            let slice = i as u64 * 10_000..(i as u64 + 1) * 10_000;
            assert!(slice.contains(&c.ms), "checkpoint {i} at {} ms", c.ms);
            assert_eq!(c.byte, c.ms / 1000 * 10_000, "maps through the index to its second's bytes");
        }
    }

    #[test]
    fn without_an_index_time_is_proportional_to_bytes() {
        let plan = Plan::derive(&secret(b"s"), "v", 4, Some(40_000), 4_000, TimeIndex::default());
        for c in &plan.checkpoints {
            assert_eq!(c.byte / 100, c.ms / 1000, "{c:?}");
        }
        assert_eq!(plan.time_at(2_000), 20_000);
    }

    #[test]
    fn a_five_second_video_still_has_its_checkpoints() {
        let plan = Plan::derive(&secret(b"s"), "short", 10, Some(5_000), 50_000, TimeIndex::default());
        assert_eq!(plan.checkpoints.len(), 10);
        assert!(plan.checkpoints.windows(2).all(|w| w[0].ms < w[1].ms));
        assert!(plan.checkpoints.last().unwrap().ms < 5_000);
    }
}
