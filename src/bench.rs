//! The internals the micro-benchmarks in `benches/` drive directly, compiled only with the
//! `bench` feature (which the bench and test builds enable); not a stable API.

use std::sync::Arc;

pub use crate::range::body::{CHUNK, Delivery, FileBody, Segment};

/// Decodes `bytes` (limits on), resizes to `width` wide and encodes lossy WebP at quality
/// 80: the thumbnail path of `GET /images/{id}?w=…&fmt=webp`.
pub fn thumbnail_webp(bytes: &[u8], width: u32) -> Vec<u8> {
    use crate::images::{Fit, Limits, OutputFormat, decode, encode, resize};
    let image = decode(bytes, &Limits::default()).expect("decodes");
    let small = resize(&image, Some(width), None, Fit::Contain).expect("resizes");
    encode(&small, OutputFormat::WebP, 80).expect("encodes").to_vec()
}

/// A view tracker over one synthetic video, for measuring observations per second.
pub struct TrackerBench {
    tracker: Arc<crate::views::tracker::Tracker>,
    plan: Arc<crate::views::checkpoint::Plan>,
    _records: tokio::sync::mpsc::Receiver<crate::views::tracker::Record>,
}

impl TrackerBench {
    /// A tracker with default rules and a `seconds`-long video of `bytes_per_second`.
    pub fn new(seconds: u64, bytes_per_second: u64) -> Self {
        use crate::media::container::{IndexPoint, TimeIndex};
        let (sink, records) = tokio::sync::mpsc::channel(crate::views::tracker::SINK_CAPACITY);
        let tracker =
            crate::views::tracker::Tracker::new(crate::config::ViewRules::default(), b"bench", sink);
        let index = TimeIndex::new(
            (0..seconds).map(|s| IndexPoint { byte: s * bytes_per_second, ms: s * 1000 }).collect(),
        );
        let size = seconds * bytes_per_second;
        let plan = tracker.plan("bench", "hash", |secret, k| {
            crate::views::checkpoint::Plan::derive(secret, "bench", k, Some(seconds * 1000), size, index)
        });
        Self { tracker, plan, _records: records }
    }

    /// The observer of one response by viewer `n`, already begun for `file_bytes`.
    pub fn observer(&self, n: u64, file_bytes: u64) -> Arc<dyn Delivery> {
        let viewer =
            crate::views::viewer::ViewerKey::derive(self.tracker.secret(), "bench", &n.to_be_bytes());
        // Each viewer on a network of its own, as the cap would otherwise stop counting.
        let ip = std::net::Ipv6Addr::new(0x2001, 0xdb8, (n >> 16) as u16, n as u16, 0, 0, 0, 1);
        let remote = std::net::SocketAddr::from((ip, 443));
        let network = crate::views::viewer::NetworkKey::of(self.tracker.secret(), Some(remote));
        let observer = self.tracker.observer(viewer, network, "bench", self.plan.clone());
        observer.begin(false, file_bytes);
        Arc::new(observer)
    }
}
