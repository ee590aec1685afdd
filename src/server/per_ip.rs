//! The cap on open connections from one address (`limits.max_connections_per_ip`).
//!
//! A map of counts behind a mutex, touched once when a connection opens and once when it
//! closes; an entry exists only while its address has a connection open, so the map never holds
//! more than `limits.max_connections` entries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

use crate::client_ip;

/// Open connections per client address (IPv6 by its /64).
pub(crate) struct PerIp {
    counts: Mutex<HashMap<IpAddr, u32>>,
    /// 0 is off.
    max: u32,
    /// A reverse proxy carries many clients on its connections, so it is exempt.
    trusted: Vec<IpNet>,
}

impl PerIp {
    /// A cap of `max` connections per address (0: none), `trusted` peers exempt.
    pub(crate) fn new(max: u32, trusted: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self { counts: Mutex::new(HashMap::new()), max, trusted })
    }

    /// Counts a connection from `peer` until the slot is dropped; `None` when `peer` already
    /// has the maximum open.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        if self.max == 0 || client_ip::is_trusted(peer, &self.trusted) {
            return Some(Slot { owner: None, key: peer });
        }
        let key = client_ip::bucket(peer);
        let mut counts = self.counts.lock().expect("the per-address counts are never poisoned");
        let count = counts.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot { owner: Some(self.clone()), key })
    }

    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.counts.lock().unwrap().len()
    }
}

/// One admitted connection; dropping it frees the slot.
pub(crate) struct Slot {
    owner: Option<Arc<PerIp>>,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(owner) = &self.owner else { return };
        let mut counts = owner.counts.lock().expect("the per-address counts are never poisoned");
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_max_slots_and_its_entry_goes_with_the_last() {
        let cap = PerIp::new(2, vec!["10.0.0.0/8".parse().unwrap()]);
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let (first, second) = (cap.admit(peer).unwrap(), cap.admit(peer).unwrap());
        assert!(cap.admit(peer).is_none());
        assert!(cap.admit("2001:db8::1".parse().unwrap()).is_some());
        // A proxy is exempt.
        let proxied: Vec<_> = (0..5).map(|_| cap.admit("10.0.0.1".parse().unwrap()).unwrap()).collect();
        drop(first);
        let third = cap.admit(peer).unwrap();
        drop((second, third, proxied));
        assert_eq!(cap.addresses(), 0);
    }
}
