//! What the transport tells the application about a request's connection.

use std::net::SocketAddr;

/// The connection a request arrived on; every transport inserts it as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionInfo {
    /// The peer's address.
    pub remote: SocketAddr,
    /// How the connection is secured.
    pub transport: Transport,
}

/// How a connection reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP (HTTP/1.1 or h2c).
    Plain,
    /// TLS over TCP (HTTP/1.1 or HTTP/2).
    Tls,
    /// QUIC (HTTP/3).
    Quic,
}
