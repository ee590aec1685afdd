//! Binding a [`ListenAddr`] to its sockets: one per address, all on one port.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};

use crate::config::ListenAddr;

/// How often binding every socket of an address to one free port is tried when the port is 0
/// (another process can take the port between the first socket and the next).
const PORT_ATTEMPTS: usize = 20;
/// The accept backlog: tokio's default, room for a burst of connections while a slot frees up.
const BACKLOG: u32 = 1024;

/// TCP listeners on every address of `addr`.
pub(super) fn tcp(addr: ListenAddr) -> anyhow::Result<Vec<TcpListener>> {
    each(addr, "TCP", listen, |listener| listener.local_addr())
}

/// TCP listeners and UDP sockets on every address of `addr`, each pair on the same port.
pub(super) fn shared_port(addr: ListenAddr) -> anyhow::Result<(Vec<TcpListener>, Vec<UdpSocket>)> {
    let pairs = each(
        addr,
        "TCP and UDP",
        |at| {
            let tcp = listen(at)?;
            let udp = UdpSocket::bind(tcp.local_addr()?)?;
            Ok((tcp, udp))
        },
        |(tcp, _)| tcp.local_addr(),
    )?;
    Ok(pairs.into_iter().unzip())
}

fn listen(at: SocketAddr) -> io::Result<TcpListener> {
    let socket = if at.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As `TcpListener::bind` does: a restarted server can bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(at)?;
    socket.listen(BACKLOG)
}

/// Binds `bind` on every address of `addr`, all on one port: the configured one, or the one the
/// system picks for the first address when it is 0.
fn each<T>(
    addr: ListenAddr,
    what: &str,
    bind: impl Fn(SocketAddr) -> io::Result<T>,
    local_addr: impl Fn(&T) -> io::Result<SocketAddr>,
) -> anyhow::Result<Vec<T>> {
    let attempts = if addr.port() == 0 { PORT_ATTEMPTS } else { 1 };
    let mut last_error = None;
    'attempt: for _ in 0..attempts {
        let mut port = addr.port();
        let mut bound = Vec::new();
        for at in addr.addrs_on(port) {
            let at = SocketAddr::new(at.ip(), port);
            match bind(at) {
                Ok(socket) => {
                    port = local_addr(&socket)?.port();
                    bound.push(socket);
                }
                Err(error) if addr.port() == 0 && error.kind() == io::ErrorKind::AddrInUse => {
                    last_error = Some(error);
                    continue 'attempt;
                }
                // `localhost` on a machine without IPv6 (or without IPv4) serves what it has.
                Err(error) if addr.is_localhost() && is_unavailable(&error) => {
                    tracing::warn!(%at, %error, "{what}: this loopback address is not available; skipped");
                }
                Err(error) => return Err(error).with_context(|| format!("binding {what} {at}")),
            }
        }
        if bound.is_empty() {
            anyhow::bail!("binding {what} {addr}: no loopback address is available");
        }
        return Ok(bound);
    }
    Err(last_error.expect("a failed attempt")).with_context(|| format!("binding {what} {addr}"))
}

/// Whether `error` says the address family or address does not exist here.
fn is_unavailable(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::AddrNotAvailable)
        || error.raw_os_error() == Some(rustix::io::Errno::AFNOSUPPORT.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_binds_both_loopback_addresses_on_one_port() {
        let (tcp, udp) = shared_port(ListenAddr::localhost(0)).unwrap();
        let addrs: Vec<SocketAddr> = tcp.iter().map(|l| l.local_addr().unwrap()).collect();
        assert_eq!(addrs.len(), 2, "{addrs:?}");
        assert!(addrs[0].is_ipv4() && addrs[1].is_ipv6(), "{addrs:?}");
        assert_eq!(addrs[0].port(), addrs[1].port());
        let udp: Vec<SocketAddr> = udp.iter().map(|s| s.local_addr().unwrap()).collect();
        assert_eq!(udp, addrs);
    }

    #[tokio::test]
    async fn a_taken_port_is_an_error_naming_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: ListenAddr = taken.local_addr().unwrap().into();
        let error = format!("{:#}", tcp(addr).unwrap_err());
        assert!(error.contains(&taken.local_addr().unwrap().to_string()), "{error}");
    }
}
