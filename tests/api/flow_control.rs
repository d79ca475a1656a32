//! Flow control: max_in_flight, and bounded server memory for clients that never read.

use std::net::SocketAddr;
use std::time::Duration;

use crate::helpers::process::ServerProcess;
use crate::helpers::*;
use prost::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A durable subscription never has more than max_in_flight unacked records out; an
/// ack lets it continue by as many as were acknowledged.
#[tokio::test]
async fn a_durable_subscription_stops_at_max_in_flight_until_acked() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 20)).await;

    let req = SubscribeRequest {
        max_in_flight: 5,
        ..sub_req("t", "c")
    };
    let mut stream = subscribe(&mut client, req).await;
    assert_eq!(next_offsets(&mut stream, 5).await, [1, 2, 3, 4, 5]);
    expect_heartbeat(&mut stream).await;
    ack(&mut client, "t", "c", 3).await;

    assert_eq!(next_offsets(&mut stream, 3).await, [6, 7, 8]);
    expect_heartbeat(&mut stream).await;
}

/// Ephemeral subscriptions have no acks, so max_in_flight does not apply to them.
#[tokio::test]
async fn an_ephemeral_subscription_is_not_limited_by_max_in_flight() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 20)).await;

    let req = SubscribeRequest {
        max_in_flight: 5,
        ..sub_req("t", "")
    };
    let mut stream = subscribe(&mut client, req).await;

    assert_eq!(
        next_offsets(&mut stream, 20).await,
        (1..=20).collect::<Vec<_>>()
    );
}

const EVENTS: usize = 4000;
const PAYLOAD: usize = 16 * 1024;
const STALLED_STREAMS: usize = 4;
/// What each stalled stream may cost: one catch-up page (about 1 MiB), 16 buffered
/// records and the HTTP/2 send buffer, rounded up generously.
const BOUND_PER_STREAM_KIB: u64 = 6 * 1024;

/// One HTTP/2 frame: 24-bit length, type, flags, stream id, payload.
fn h2_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend([kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
}

/// A client that sends one Subscribe on a raw HTTP/2 connection and never reads its
/// socket again, as a frozen process does. It grants the largest flow-control windows,
/// so only TCP holds the server back: the server sends until the socket is full.
async fn frozen_subscriber(server: SocketAddr, req: SubscribeRequest) -> TcpStream {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    const MAX_WINDOW: u32 = (1 << 31) - 1;
    let initial_window = [&[0x00, 0x04][..], &MAX_WINDOW.to_be_bytes()].concat();
    h2_frame(&mut out, 0x4, 0, 0, &initial_window);
    h2_frame(&mut out, 0x8, 0, 0, &(MAX_WINDOW - 65_535).to_be_bytes());
    // HPACK: each header a literal without indexing, with a literal name.
    let authority = server.to_string();
    let mut headers = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/pulsebus.v1.EventBus/Subscribe"),
        (":authority", authority.as_str()),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        headers.extend([0x00, name.len() as u8]);
        headers.extend(name.as_bytes());
        headers.push(value.len() as u8);
        headers.extend(value.as_bytes());
    }
    const END_HEADERS: u8 = 0x4;
    const END_STREAM: u8 = 0x1;
    h2_frame(&mut out, 0x1, END_HEADERS, 1, &headers);
    let message = req.encode_to_vec();
    let body = [&[0][..], &(message.len() as u32).to_be_bytes(), &message].concat();
    h2_frame(&mut out, 0x0, END_STREAM, 1, &body);
    let mut socket = TcpStream::connect(server).await.unwrap();
    socket.write_all(&out).await.unwrap();
    socket
}

/// The (send, receive) queue lengths in bytes of the IPv4 TCP socket from `local` to
/// `remote`, from /proc/net/tcp: bytes not yet acknowledged by the peer, and bytes
/// received that the owner has not read.
fn tcp_queues(local: SocketAddr, remote: SocketAddr) -> (u64, u64) {
    // An address is the kernel's u32 in hex (network byte order in memory), then the
    // port in hex.
    let parse = |hex: &str| -> SocketAddr {
        let (ip, port) = hex.split_once(':').unwrap();
        let ip = u32::from_str_radix(ip, 16).unwrap().to_ne_bytes();
        (
            std::net::Ipv4Addr::from(ip),
            u16::from_str_radix(port, 16).unwrap(),
        )
            .into()
    };
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let socket = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (parse(fields[1]) == local && parse(fields[2]) == remote).then(|| fields[4].to_owned())
    });
    let queues = socket.unwrap_or_else(|| panic!("no TCP socket {local} -> {remote}"));
    let (tx, rx) = queues.split_once(':').unwrap();
    (
        u64::from_str_radix(tx, 16).unwrap(),
        u64::from_str_radix(rx, 16).unwrap(),
    )
}

/// Waits until the server's stream to `client` is stalled on a full socket: the
/// server's side holds bytes not taken, while the client's side holds received bytes
/// and does not grow between two looks 100 ms apart (its receive window is closed).
/// Returns (server's send queue, client's receive queue) and how long it took.
async fn stalled_on_a_full_socket(
    server: SocketAddr,
    client: SocketAddr,
) -> ((u64, u64), Duration) {
    let mut received_before = 0;
    let probe = || {
        let (unsent, _) = tcp_queues(server, client);
        let (_, received) = tcp_queues(client, server);
        let grew = received != received_before;
        received_before = received;
        async move { (unsent, received, grew) }
    };
    let ((unsent, received, grew), took) = settle(
        Duration::from_millis(100),
        probe,
        |&(unsent, received, grew)| unsent > 0 && received > 0 && !grew,
    )
    .await;
    assert!(
        unsent > 0 && received > 0 && !grew,
        "the stream to {client} never stalled on a full socket: server send queue {unsent} B, client receive queue {received} B (still growing: {grew})"
    );
    ((unsent, received), took)
}

/// Clients that send a Subscribe and never read their socket again (a frozen process;
/// two ephemeral streams, two durable ones with max_in_flight at its maximum) cost the
/// server a bounded amount of memory. Sampling starts once every stream is provably
/// stalled: the server's socket holds bytes the client's full receive queue cannot
/// take, so the server has sent all it can and everything else waits in its buffers.
/// Its RSS then grows less than the per-stream bound, far below the 64 MiB the streams
/// would hold otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_cost_the_server_bounded_memory() {
    let server = ServerProcess::on_database(
        &fresh_database().await,
        &[
            "--heartbeat-interval",
            "100ms",
            "--keepalive-interval",
            "1h",
        ],
    )
    .await;
    let mut client = server.client().await;
    let blob = Event {
        data: Some(event::Data::BinaryData(vec![42; PAYLOAD])),
        ..event("blob", "")
    };
    for _ in 0..EVENTS / 50 {
        publish(&mut client, "big", vec![blob.clone(); 50]).await;
    }
    let before = server.rss_kib();

    let addr: SocketAddr = server.addr.parse().unwrap();
    let mut stalled = Vec::new();
    for i in 0..STALLED_STREAMS {
        let consumer = if i % 2 == 0 {
            String::new()
        } else {
            format!("stalled-{i}")
        };
        let req = SubscribeRequest {
            max_in_flight: 100_000,
            ..sub_req("big", &consumer)
        };
        stalled.push(frozen_subscriber(addr, req).await);
    }
    let mut queues = Vec::new();
    for socket in &stalled {
        queues.push(stalled_on_a_full_socket(addr, socket.local_addr().unwrap()).await);
    }
    let stalled_at = server.rss_kib();
    let mut peak = stalled_at;
    let mut samples = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..30 {
        samples.tick().await;
        peak = peak.max(server.rss_kib());
    }

    let growth = peak.saturating_sub(before);
    for (i, ((unsent, received), took)) in queues.iter().enumerate() {
        eprintln!(
            "stream {i} stalled after {took:?}: {unsent} B unsent in the server's socket, {received} B unread in the client's"
        );
    }
    eprintln!(
        "server RSS {before} KiB before, {stalled_at} KiB once every stream stalled, {peak} KiB peak over the next 3 s with {STALLED_STREAMS} stalled streams (+{growth} KiB)"
    );
    assert!(
        growth < BOUND_PER_STREAM_KIB * STALLED_STREAMS as u64,
        "grew by {growth} KiB"
    );
    drop(stalled);
}
