//! A TCP proxy in front of Postgres that makes the database as far away as a managed one
//! (each chunk delayed by half the round-trip time each way, in order, pipelining kept) and
//! counts round trips: how often the client speaks again after the server has answered. The
//! count is what a serverless function pays per operation to a database a network hop away.
//!
//! Plain threads, not tasks: `std::thread::sleep` keeps sub-millisecond delays (tokio's timer
//! rounds each one up to the next millisecond tick).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What the client sent at the start of each round trip (its SQL, when it sent some).
type Turns = Arc<Mutex<Vec<String>>>;

/// A running proxy (it lives as long as the test process).
pub struct Wire {
    /// Where clients connect instead of the database.
    pub addr: SocketAddr,
    round_trips: Arc<AtomicU64>,
    turns: Turns,
}

/// Which side spoke last on one connection.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Nobody,
    Client,
    Server,
}

/// One direction of one connection.
struct Pipe {
    from: TcpStream,
    to: TcpStream,
    side: Side,
    last: Arc<Mutex<Side>>,
    /// Client side only: where its turns are counted and logged.
    count: Option<(Arc<AtomicU64>, Turns)>,
}

impl Wire {
    /// Proxies to `upstream`, adding `rtt` to every round trip.
    pub async fn start(upstream: SocketAddr, rtt: Duration) -> Wire {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let round_trips = Arc::new(AtomicU64::new(0));
        let turns = Turns::default();
        let (counter, log) = (round_trips.clone(), turns.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(upstream)) else { return };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let last = Arc::new(Mutex::new(Side::Nobody));
                let up = Pipe {
                    from: client.try_clone().unwrap(),
                    to: server.try_clone().unwrap(),
                    side: Side::Client,
                    last: last.clone(),
                    count: Some((counter.clone(), log.clone())),
                };
                let down = Pipe { from: server, to: client, side: Side::Server, last, count: None };
                for pipe in [up, down] {
                    thread::spawn(move || pipe.run(rtt / 2));
                }
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

impl Pipe {
    /// Copies until either side closes, each chunk leaving `delay` after it arrived.
    fn run(mut self, delay: Duration) {
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
        let mut to = self.to;
        let writer = thread::spawn(move || {
            for (due, chunk) in rx {
                thread::sleep(due.saturating_duration_since(Instant::now()));
                if to.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = self.from.read(&mut buf) {
            let mut last = self.last.lock().unwrap();
            if *last != self.side {
                if let Some((count, turns)) = &self.count {
                    count.fetch_add(1, Ordering::SeqCst);
                    turns.lock().unwrap().push(sql_of(&buf[..n]));
                }
                *last = self.side;
            }
            drop(last);
            if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                break;
            }
        }
        drop(tx);
        let _ = writer.join();
    }
}

/// The readable text of a client message: the SQL of a Parse or Query, squeezed.
fn sql_of(chunk: &[u8]) -> String {
    let text: String = chunk.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { ' ' }).collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.chars().take(90).collect()
}
