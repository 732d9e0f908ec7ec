//! The per-address connection cap (`server.max_connections_per_address`).
//!
//! Slow clients hold connections, not requests: a client that opens
//! connections and sends nothing, or a request head and then a trickle of
//! body, costs the server a connection each until a deadline closes it.
//! The cap counts the open TCP connections of each peer address across all
//! workers. actix-web calls [`ConnectionLimit::on_connect`] for each
//! accepted connection before reading from it: within the cap, a [`Slot`]
//! goes into the connection's data and gives the place back when the
//! connection ends; beyond it, the socket is shut down at once, without a
//! response, so the refused connection holds nothing.
//!
//! With built-in TLS the hook sees the TLS stream, and counts the TCP
//! connection under it.
//!
//! The address is the TCP peer, never `X-Forwarded-For`: behind a reverse
//! proxy every connection comes from the proxy.

use std::any::Any;
use std::collections::HashMap;
use std::net::{IpAddr, Shutdown};
use std::sync::{Arc, Mutex, MutexGuard};

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;

/// The open connections of each address and the cap (0 = none).
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    max_per_address: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnectionLimit {
    /// At most `max_per_address` open connections per address (0 =
    /// unlimited).
    pub fn new(max_per_address: usize) -> Self {
        ConnectionLimit {
            max_per_address,
            open: Arc::default(),
        }
    }

    /// The hook for `HttpServer::on_connect`: admits the connection (its
    /// [`Slot`] stored in `data`) or shuts its socket down.
    pub fn on_connect(&self, connection: &dyn Any, data: &mut Extensions) {
        if self.max_per_address == 0 {
            return;
        }
        let Some(tcp) = tcp_of(connection) else {
            return;
        };
        let Ok(peer) = tcp.peer_addr() else {
            // Already gone: nothing to count.
            return;
        };
        match self.admit(peer.ip()) {
            Some(slot) => {
                data.insert(slot);
            }
            None => {
                tracing::debug!(
                    address = %peer.ip(),
                    limit = self.max_per_address,
                    "connection refused: too many open connections from this address"
                );
                // The worker then reads end-of-stream and drops the
                // connection; the client sees it closed.
                if let Err(e) = socket2::SockRef::from(tcp).shutdown(Shutdown::Both) {
                    tracing::debug!(error = %e, "shutting down a refused connection failed");
                }
            }
        }
    }

    /// A place for one more connection from `ip`, or `None` at the cap.
    pub fn admit(&self, ip: IpAddr) -> Option<Slot> {
        // IPv4 clients of an IPv6 listener appear as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        let mut open = self.lock();
        let count = open.entry(ip).or_insert(0);
        if self.max_per_address != 0 && *count >= self.max_per_address {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: Arc::clone(&self.open),
            ip,
        })
    }

    /// The open connections counted for `ip`.
    #[cfg(test)]
    fn open_from(&self, ip: IpAddr) -> usize {
        self.lock().get(&ip.to_canonical()).copied().unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        lock(&self.open)
    }
}

/// The TCP socket under a connection: plain, or under built-in TLS (where
/// actix-web calls the hook once the handshake is done, so a TLS connection
/// is counted from then on; the handshake has `TLS_HANDSHAKE_TIMEOUT`).
fn tcp_of(connection: &dyn Any) -> Option<&TcpStream> {
    if let Some(tcp) = connection.downcast_ref::<TcpStream>() {
        return Some(tcp);
    }
    connection
        .downcast_ref::<TlsStream<TcpStream>>()
        .map(|tls| tls.get_ref().0)
}

/// The counts stay consistent even if a thread panicked while holding the
/// lock: each update is a single increment or decrement.
fn lock(open: &Mutex<HashMap<IpAddr, usize>>) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
    open.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One admitted connection; dropped with the connection, which frees its
/// place.
#[derive(Debug)]
pub struct Slot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_cap_is_per_address_and_a_closed_connection_frees_its_place() {
        let limit = ConnectionLimit::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limit.admit(a).unwrap();
        let _second = limit.admit(a).unwrap();
        assert!(limit.admit(a).is_none());
        // An IPv4 address seen through an IPv6 listener is the same client.
        assert!(limit.admit("::ffff:192.0.2.1".parse().unwrap()).is_none());
        let _other = limit.admit(b).unwrap();
        assert_eq!(limit.open_from(a), 2);
        drop(first);
        assert_eq!(limit.open_from(a), 1);
        let _third = limit.admit(a).unwrap();
        assert!(limit.admit(a).is_none());
    }

    #[test]
    fn zero_is_unlimited_and_counts_nothing_left_over() {
        let limit = ConnectionLimit::new(0);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let slots: Vec<Slot> = (0..1000).map(|_| limit.admit(a).unwrap()).collect();
        assert_eq!(limit.open_from(a), 1000);
        drop(slots);
        assert_eq!(limit.open_from(a), 0);
        assert!(limit.open.lock().unwrap().is_empty());
    }
}
