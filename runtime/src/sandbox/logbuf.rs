//! A bounded, per-invocation log: the trigger's `log` calls plus its stdout and stderr.
//!
//! Every write is accepted (a trigger must not fail or stall because it logs), but only
//! the first `cap` bytes are kept; the rest is counted and reported with a marker.

use bytes::Bytes;
use std::sync::{Arc, Mutex, MutexGuard};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Debug, Default)]
struct Inner {
    text: Vec<u8>,
    dropped: usize,
}

/// The log of one invocation. Cheap to clone; clones share the buffer.
#[derive(Clone, Debug)]
pub struct LogBuffer {
    inner: Arc<Mutex<Inner>>,
    cap: usize,
}

impl LogBuffer {
    /// An empty log that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        LogBuffer { inner: Arc::default(), cap }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The buffer holds plain bytes, so a panic elsewhere cannot leave it inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends bytes, keeping what fits.
    pub fn write(&self, bytes: &[u8]) {
        let mut inner = self.lock();
        let room = self.cap.saturating_sub(inner.text.len());
        let kept = bytes.len().min(room);
        inner.text.extend_from_slice(&bytes[..kept]);
        inner.dropped += bytes.len() - kept;
    }

    /// Appends one line.
    pub fn line(&self, prefix: &str, message: &str) {
        // Build the line first so a line is kept or cut as one write.
        let mut line = Vec::with_capacity(prefix.len() + message.len() + 1);
        line.extend_from_slice(prefix.as_bytes());
        line.extend_from_slice(message.as_bytes());
        line.push(b'\n');
        self.write(&line);
    }

    /// Bytes the trigger logged in all, kept or not.
    pub fn total_bytes(&self) -> usize {
        let inner = self.lock();
        inner.text.len() + inner.dropped
    }

    /// The log as text, with a marker saying how much was cut.
    pub fn contents(&self) -> String {
        let inner = self.lock();
        let mut text = String::from_utf8_lossy(&inner.text).into_owned();
        if inner.dropped > 0 {
            if !text.ends_with('\n') && !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!(
                "[synctrig: log truncated at {} bytes; {} more bytes dropped]\n",
                self.cap, inner.dropped
            ));
        }
        text
    }
}

/// The trigger's stdout or stderr, writing into a [`LogBuffer`].
#[derive(Clone)]
pub struct LogSink(pub LogBuffer);

impl IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogSink {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Any single write up to this size is accepted at once; the buffer decides what is kept.
const PERMIT: usize = 64 * 1024;

impl OutputStream for LogSink {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0.write(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogSink {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogSink {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.write(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_cap_and_marks_the_rest() {
        let log = LogBuffer::new(10);
        log.line("", "12345");
        log.line("", "67890");
        assert_eq!(log.total_bytes(), 12);
        assert_eq!(log.contents(), "12345\n6789\n[synctrig: log truncated at 10 bytes; 2 more bytes dropped]\n");
    }

    #[test]
    fn untruncated_log_has_no_marker() {
        let log = LogBuffer::new(100);
        log.line("[info] ", "hi");
        assert_eq!(log.contents(), "[info] hi\n");
    }
}
