//! Our extension: a tenant takes its pool's users' data elsewhere — the pool, its
//! identities, logins, datasets and records as `admin export --pool` writes them (JSON
//! lines), streamed from one snapshot as it is read.

use crate::call::Call;
use crate::error::ApiError;
use crate::sync::authorize_pool;
use axum::body::Bytes;
use synctrig_store::Scope;

/// Our extension: a tenant takes its pool's users' data elsewhere — the pool, its
/// identities, logins, datasets and records as `admin export --pool` writes them (JSON
/// lines), streamed from one snapshot as it is read.
pub(crate) async fn export_identity_pool(call: Call) -> Result<axum::response::Response, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let state = call.state.clone();
    // The export writes synchronously, on a blocking thread; a second one relays its
    // chunks to the response (a blocking thread that drives a future cannot also block
    // on the response's channel).
    let (chunks_tx, chunks_rx) = std::sync::mpsc::sync_channel::<Result<Bytes, std::io::Error>>(1);
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter { tx: chunks_tx, buf: Vec::with_capacity(CHUNK) };
        // A client that goes away ends the export (its read transaction with it); a
        // failure midway ends the body without its end line, which import refuses.
        let exported =
            tokio::runtime::Handle::current().block_on(state.store.export(&Scope::Pool(pool.pool_id), &mut out));
        if let Err(e) = exported {
            tracing::warn!(error = %e, "pool export failed");
            let _ = out.tx.send(Err(std::io::Error::other(e.to_string())));
        }
    });
    tokio::task::spawn_blocking(move || {
        for chunk in chunks_rx {
            if tx.blocking_send(chunk).is_err() {
                break;
            }
        }
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let body = axum::body::Body::from_stream(chunks);
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )))
}

/// How much of an export is sent at a time.
const CHUNK: usize = 64 << 10;

/// Writes into a bounded channel in chunks: the export runs at the client's pace.
struct ChunkWriter {
    tx: std::sync::mpsc::SyncSender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.send(Ok(chunk)).map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}
