//! Counting the messages a client streams in, so ingest shows as events per second.
//!
//! A gRPC body is a sequence of frames: one flag byte, a four-byte big-endian length, then the
//! message. [`CountingBody`] passes the body through untouched and counts frame headers as they
//! go by; the count is handed on once, when the body is dropped, to whoever records it (the
//! RPC layer), so this file knows nothing of metrics.

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Where a frame parser stands.
#[derive(Default)]
struct FrameCounter {
    header: [u8; 5],
    header_len: usize,
    remaining: usize,
    messages: u64,
}

impl FrameCounter {
    fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let skip = self.remaining.min(chunk.len());
                self.remaining -= skip;
                chunk = &chunk[skip..];
                continue;
            }
            let take = (5 - self.header_len).min(chunk.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&chunk[..take]);
            self.header_len += take;
            chunk = &chunk[take..];
            if self.header_len == 5 {
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]);
                self.remaining = len as usize;
                self.header_len = 0;
                self.messages += 1;
            }
        }
    }
}

/// A request body whose gRPC messages are counted; `on_drop` gets the count when there was one.
pub struct CountingBody<F: FnOnce(u64)> {
    inner: tonic::body::Body,
    counter: FrameCounter,
    on_drop: Option<F>,
}

impl<F: FnOnce(u64)> CountingBody<F> {
    /// Counts the messages of `inner`; `on_drop` is called with the count when the body is
    /// dropped, unless no message went by.
    pub fn new(inner: tonic::body::Body, on_drop: F) -> Self {
        Self {
            inner,
            counter: FrameCounter::default(),
            on_drop: Some(on_drop),
        }
    }
}

impl<F: FnOnce(u64)> Drop for CountingBody<F> {
    fn drop(&mut self) {
        if self.counter.messages > 0
            && let Some(record) = self.on_drop.take()
        {
            record(self.counter.messages);
        }
    }
}

impl<F: FnOnce(u64) + Unpin> Body for CountingBody<F> {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.counter.feed(data.chunk());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32) -> Vec<u8> {
        let mut f = vec![0];
        f.extend(len.to_be_bytes());
        f.extend(std::iter::repeat_n(7u8, len as usize));
        f
    }

    #[test]
    fn counts_frames_however_the_bytes_are_split() {
        let stream: Vec<u8> = [frame(3), frame(0), frame(300), frame(1)].concat();
        for chunk_size in [1, 2, 5, 7, 64, stream.len()] {
            let mut counter = FrameCounter::default();
            stream.chunks(chunk_size).for_each(|c| counter.feed(c));
            assert_eq!(counter.messages, 4, "chunks of {chunk_size}");
        }
    }
}
