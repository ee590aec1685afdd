//! Listening addresses: an IP and port, or `localhost:<port>` for both loopback addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a listener binds: one socket address, or every loopback address when the host is
/// `localhost`.
///
/// `localhost` means both 127.0.0.1 and ::1 because clients disagree on which one the name
/// resolves to: Chromium's forced QUIC (`--origin-to-force-quic-on=localhost:…`) goes to ::1 and
/// never falls back, while curl and most libraries try 127.0.0.1 first. Binding one of them
/// leaves the other kind of client with a refused connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr {
    host: Host,
    port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host {
    Localhost,
    Ip(IpAddr),
}

/// The loopback addresses `localhost` binds, IPv4 first so port 0 is chosen on it.
const LOOPBACK: [IpAddr; 2] = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];

impl ListenAddr {
    /// Both loopback addresses on `port`.
    pub fn localhost(port: u16) -> Self {
        Self { host: Host::Localhost, port }
    }

    /// The port (0 asks the system for a free one).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The same host on another port (the one the system chose for port 0).
    pub fn with_port(self, port: u16) -> Self {
        Self { port, ..self }
    }

    /// The `host:port` a browser on this machine should use to reach these sockets: `localhost`
    /// where both loopback addresses answer (`localhost`, or `[::]`, which also takes IPv4),
    /// `127.0.0.1` for `0.0.0.0`, else the address itself.
    pub fn browser_origin(&self) -> String {
        match self.host {
            Host::Localhost | Host::Ip(IpAddr::V6(Ipv6Addr::UNSPECIFIED)) => {
                format!("localhost:{}", self.port)
            }
            Host::Ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED)) => format!("127.0.0.1:{}", self.port),
            Host::Ip(ip) => SocketAddr::new(ip, self.port).to_string(),
        }
    }

    /// Whether this is `localhost`, whose addresses are bound as far as the system has them
    /// (a machine without IPv6 still serves 127.0.0.1).
    pub fn is_localhost(&self) -> bool {
        self.host == Host::Localhost
    }

    /// The socket addresses to bind, on `port` instead of the configured one.
    pub fn addrs_on(&self, port: u16) -> Vec<SocketAddr> {
        match self.host {
            Host::Localhost => LOOPBACK.iter().map(|ip| SocketAddr::new(*ip, port)).collect(),
            Host::Ip(ip) => vec![SocketAddr::new(ip, port)],
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        Self { host: Host::Ip(addr.ip()), port: addr.port() }
    }
}

/// Why a listening address did not parse.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a listening address: use IP:PORT, [IPv6]:PORT or localhost:PORT")]
pub struct InvalidListenAddr(String);

impl FromStr for ListenAddr {
    type Err = InvalidListenAddr;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(addr.into());
        }
        let port = text
            .strip_prefix("localhost:")
            .and_then(|port| port.parse::<u16>().ok())
            .ok_or_else(|| InvalidListenAddr(text.to_owned()))?;
        Ok(Self::localhost(port))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host {
            Host::Localhost => write!(f, "localhost:{}", self.port),
            Host::Ip(ip) => SocketAddr::new(ip, self.port).fmt(f),
        }
    }
}

impl Serialize for ListenAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_means_both_loopback_addresses() {
        let addr: ListenAddr = "localhost:8443".parse().unwrap();
        assert!(addr.is_localhost());
        assert_eq!(addr.port(), 8443);
        assert_eq!(
            addr.addrs_on(8443),
            ["127.0.0.1:8443".parse::<SocketAddr>().unwrap(), "[::1]:8443".parse().unwrap()]
        );
        assert_eq!(addr.to_string(), "localhost:8443");
        assert_eq!(addr.browser_origin(), "localhost:8443");
    }

    #[test]
    fn browsers_are_sent_where_the_sockets_answer() {
        let origin = |text: &str| text.parse::<ListenAddr>().unwrap().browser_origin();
        assert_eq!(origin("[::]:8443"), "localhost:8443");
        assert_eq!(origin("0.0.0.0:8443"), "127.0.0.1:8443");
        assert_eq!(origin("192.0.2.7:8443"), "192.0.2.7:8443");
        assert_eq!(origin("[2001:db8::1]:8443"), "[2001:db8::1]:8443");
    }

    #[test]
    fn an_ip_address_is_one_socket() {
        for text in ["127.0.0.1:8080", "[::]:8443", "0.0.0.0:0"] {
            let addr: ListenAddr = text.parse().unwrap();
            assert!(!addr.is_localhost());
            assert_eq!(addr.addrs_on(addr.port()), [text.parse::<SocketAddr>().unwrap()]);
            assert_eq!(addr.to_string(), text);
        }
    }

    #[test]
    fn other_names_and_missing_ports_are_refused() {
        for text in ["example.com:80", "localhost", "localhost:99999", "127.0.0.1", ":8443", ""] {
            let error = text.parse::<ListenAddr>().unwrap_err().to_string();
            assert!(error.contains("IP:PORT"), "{text}: {error}");
        }
    }
}
