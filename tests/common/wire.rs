//! A TCP proxy in front of Postgres that makes the database as far away as a managed one
//! (each flight delayed by half the round-trip time, in order, pipelining kept) and counts
//! round trips: how often the client speaks again after the server has answered. The count
//! is what a serverless function pays per operation to a database a network hop away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A running proxy.
pub struct Wire {
    /// Where clients connect instead of the database.
    pub addr: SocketAddr,
    round_trips: Arc<AtomicU64>,
    turns: Turns,
}

/// What the client sent at the start of each round trip (its SQL, when it sent some).
type Turns = Arc<std::sync::Mutex<Vec<String>>>;

/// Which side spoke last on one connection.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Nobody,
    Client,
    Server,
}

impl Wire {
    /// Proxies to `upstream`, adding `rtt` to every round trip.
    pub async fn start(upstream: SocketAddr, rtt: Duration) -> Wire {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let round_trips = Arc::new(AtomicU64::new(0));
        let counter = round_trips.clone();
        let turns = Turns::default();
        let log = turns.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else { return };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let last = Arc::new(Mutex::new(Side::Nobody));
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let half = rtt / 2;
                let count = Some((counter.clone(), log.clone()));
                tokio::spawn(pipe(client_read, server_write, half, Side::Client, last.clone(), count));
                tokio::spawn(pipe(server_read, client_write, half, Side::Server, last, None));
            }
        });
        Wire { addr, round_trips, turns }
    }

    /// Round trips since the start or the last [`Wire::reset`], over all connections.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::SeqCst)
    }

    /// What each round trip since the last reset began with: the SQL the client sent, as text.
    pub fn turns(&self) -> Vec<String> {
        self.turns.lock().unwrap().clone()
    }

    /// Starts counting again from zero.
    pub fn reset(&self) {
        self.round_trips.store(0, Ordering::SeqCst);
        self.turns.lock().unwrap().clear();
    }

    /// `url` (a `postgres://` URL) pointed at this proxy.
    pub fn url(&self, url: &str) -> String {
        let mut u = reqwest::Url::parse(url).unwrap();
        u.set_host(Some("127.0.0.1")).unwrap();
        u.set_port(Some(self.addr.port())).unwrap();
        u.to_string()
    }
}

/// The host and port of a `postgres://` URL.
pub async fn upstream(url: &str) -> SocketAddr {
    let u = reqwest::Url::parse(url).unwrap();
    let host = u.host_str().unwrap_or("127.0.0.1").to_string();
    tokio::net::lookup_host((host, u.port().unwrap_or(5432))).await.unwrap().next().unwrap()
}

/// Copies one direction, each chunk leaving `delay` after it arrived (in order); `count`
/// (client side only) counts the client's turns.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    side: Side,
    last: Arc<Mutex<Side>>,
    count: Option<(Arc<AtomicU64>, Turns)>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        {
            let mut last = last.lock().await;
            if *last != side {
                if let Some((count, turns)) = &count {
                    count.fetch_add(1, Ordering::SeqCst);
                    turns.lock().unwrap().push(sql_of(&buf[..n]));
                }
                *last = side;
            }
        }
        if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
            return;
        }
    }
}

/// The readable text of a client message: the SQL of a Parse or Query, squeezed.
fn sql_of(chunk: &[u8]) -> String {
    let text: String = chunk.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { ' ' }).collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.chars().take(90).collect()
}
