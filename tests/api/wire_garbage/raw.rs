//! Raw gRPC calls: a codec that sends and receives message bytes as they are, and
//! hand-built frames.

use bytes::{Buf, BufMut, Bytes};
use http_body_util::{BodyExt, Full};
use std::future::poll_fn;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::Service;
use tonic::codegen::http::{self, uri::PathAndQuery};
use tonic::transport::Channel;

use super::*;

// ---------------------------------------------------------------------------------
// A codec that sends and receives raw message bytes (tonic still frames them).
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Default)]
pub struct RawCodec;

pub struct RawEncoder;
pub struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// Sends `body` as the one message of a unary call; the reply's raw bytes or status.
pub async fn unary(channel: &Channel, path: &'static str, body: Bytes) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("the channel is ready");
    let call = grpc.unary(
        tonic::Request::new(body),
        PathAndQuery::from_static(path),
        RawCodec,
    );
    tokio::time::timeout(WAIT, call)
        .await
        .unwrap_or_else(|_| panic!("{path} answered within {WAIT:?}"))
        .map(tonic::Response::into_inner)
}

/// Opens a server stream with `body` as its request; `Ok` once the stream is open.
pub async fn server_stream(
    channel: &Channel,
    path: &'static str,
    body: Bytes,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("the channel is ready");
    let call = grpc.server_streaming(
        tonic::Request::new(body),
        PathAndQuery::from_static(path),
        RawCodec,
    );
    tokio::time::timeout(WAIT, call)
        .await
        .unwrap_or_else(|_| panic!("{path} answered within {WAIT:?}"))
        .map(drop)
}

/// Sends `body` as the whole HTTP/2 request body, gRPC framing included (or not), and
/// returns the gRPC status the server ends the call with.
pub async fn raw_call(channel: &Channel, path: &str, body: Vec<u8>) -> Status {
    let mut channel = channel.clone();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://pulsebus.test{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(Full::new(Bytes::from(body))))
        .unwrap();
    let call = async {
        poll_fn(|cx| channel.poll_ready(cx))
            .await
            .expect("the channel is ready");
        let response = channel.call(request).await.expect("an HTTP response");
        if let Some(status) = Status::from_header_map(response.headers()) {
            return status; // trailers-only
        }
        let body = response.into_body().collect().await.expect("a whole body");
        let trailers = body.trailers().expect("the call ends with trailers");
        Status::from_header_map(trailers).expect("the trailers hold a grpc-status")
    };
    tokio::time::timeout(WAIT, call)
        .await
        .unwrap_or_else(|_| panic!("{path} answered within {WAIT:?}"))
}

/// A gRPC frame: compression flag, big-endian length, then the bytes.
pub fn frame(flag: u8, claimed_len: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + bytes.len());
    out.push(flag);
    out.extend_from_slice(&claimed_len.to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

pub fn framed(bytes: &[u8]) -> Vec<u8> {
    frame(0, bytes.len() as u32, bytes)
}
