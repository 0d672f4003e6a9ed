//! Calls with bytes as they are: a request message no client library would build (fuzz corpus
//! entries, undecodable bytes), sent to any method, and the status that comes back.

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// A codec that sends and receives message bytes unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// The encoder and decoder of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytes;

impl Encoder for RawBytes {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

/// Sends `message` as the one request message of `method` (`/package.Service/Method`) and
/// returns the response bytes or the status. A client-streaming method gets a stream of one.
pub async fn call(
    channel: &Channel,
    method: &'static str,
    client_streaming: bool,
    message: Bytes,
) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("not ready: {e}")))?;
    let path = PathAndQuery::from_static(method);
    let response = if client_streaming {
        let stream = tokio_stream::iter([message]);
        grpc.client_streaming(Request::new(stream), path, RawCodec)
            .await?
    } else {
        grpc.unary(Request::new(message), path, RawCodec).await?
    };
    Ok(response.into_inner())
}
