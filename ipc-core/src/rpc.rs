//! Request/response over any [`Channel`]: correlation ids, many calls in flight from
//! many tasks, a timeout per call, each response routed to its caller.
//!
//! ```text
//! +---------+-----------------+------------------+
//! | kind u8 | id: u64, BE     | body             |     one frame
//! +---------+-----------------+------------------+
//! kind 0 = request, 1 = response, 2 = error response (body = UTF-8 message)
//! ```
//!
//! On a channel whose frames must be JSON texts (`node`: [`crate::ChannelInfo::binary_frames`]
//! is false) both sides use a JSON envelope instead, chosen automatically, so a Node.js
//! program can serve and call as well; request and reply bodies must then be JSON texts:
//!
//! ```text
//! {"$rpc":{"id":7,"kind":"request"},"body":{"op":"add","a":1,"b":2}}
//! {"$rpc":{"id":7,"kind":"response"},"body":3}
//! {"$rpc":{"id":8,"kind":"error"},"body":"unknown op"}
//! ```
//!
//! The client side is [`RpcClient`]; the serving side is [`serve`]. A caller that gives
//! up (timeout, or its future dropped) does not disturb the others: its late response is
//! discarded.
//!
//! ```no_run
//! # async fn demo(client_end: Box<dyn ipc_core::Channel>, server_end: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
//! use std::time::Duration;
//! use ipc_core::rpc::{serve, RpcClient};
//! tokio::spawn(serve(server_end, |req: bytes::Bytes| async move {
//!     Ok::<_, String>(req) // echo
//! }));
//! let client = RpcClient::new(client_end);
//! let reply = client.call("hello".into(), Duration::from_secs(1)).await?;
//! assert_eq!(reply, "hello");
//! # Ok(()) }
//! ```

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::channel::{Channel, SendHalf};
use crate::codec::Codec;
use crate::error::{Error, RecvError, Result};
use crate::prelude::*;

mod envelope;

use envelope::{Envelope, Kind};

/// Requests a server handles at once; more wait (so a flood cannot exhaust memory).
pub const MAX_CONCURRENT_REQUESTS: usize = 256;

type Pending = Arc<Mutex<PendingCalls>>;

#[derive(Default)]
struct PendingCalls {
    waiting: HashMap<u64, oneshot::Sender<Result<Bytes>>>,
    /// Set once the channel is dead; every call still waiting, and every later one,
    /// fails with this.
    dead: Option<Verdict>,
}

/// Why the channel to the server is dead: one cause, one error for every caller.
#[derive(Debug, Clone)]
enum Verdict {
    /// The server went away without closing: [`Error::PeerLost`] with this reason.
    Lost(String),
    /// The server closed the channel cleanly, leaving calls unanswered.
    ClosedByServer,
}

impl Verdict {
    /// The verdict for the receive side's last result.
    fn of(end: Result<Option<Bytes>, RecvError>) -> Verdict {
        match end {
            Ok(_) => Verdict::ClosedByServer,
            // PeerLost already carries the explanation: do not wrap it twice.
            Err(RecvError::PeerLost(why)) => Verdict::Lost(why),
            Err(e) => Verdict::Lost(format!("the channel failed: {e}")),
        }
    }

    fn error(&self) -> Error {
        match self {
            Verdict::Lost(why) => Error::PeerLost(why.clone()),
            Verdict::ClosedByServer => Error::Closed,
        }
    }
}

/// How long a call whose request could not be sent waits for the receive side to say
/// why the channel died, so that it reports the same error as every other caller.
const VERDICT_GRACE: Duration = Duration::from_secs(1);

fn lock(p: &Pending) -> std::sync::MutexGuard<'_, PendingCalls> {
    // A panic while holding this lock cannot leave the map inconsistent.
    p.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes a call's entry when the call ends for any reason (answer, timeout, drop).
struct CallGuard {
    pending: Pending,
    id: u64,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        lock(&self.pending).waiting.remove(&self.id);
    }
}

/// The calling side: cheap to share between tasks (`Arc<RpcClient>` or `&RpcClient`).
pub struct RpcClient {
    tx: tokio::sync::Mutex<Box<dyn SendHalf>>,
    envelope: Envelope,
    pending: Pending,
    /// Becomes true once `pending.dead` is set.
    died: watch::Receiver<bool>,
    /// [`close`](Self::close) was called.
    closed_here: AtomicBool,
    next_id: AtomicU64,
    reader: JoinHandle<()>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("envelope", &self.envelope)
            .field("closed", &self.closed_here.load(Ordering::Relaxed))
            .field("peer_gone", &*self.died.borrow())
            .field("next_id", &self.next_id.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RpcClient {
    /// Take a channel whose peer runs [`serve`]. Must be called inside a tokio runtime
    /// (a task routes the responses).
    pub fn new(channel: impl Channel) -> Self {
        let envelope = Envelope::for_channel(&channel.info());
        let (tx, mut rx) = (Box::new(channel) as Box<dyn Channel>).split();
        let pending: Pending = Arc::default();
        let routes = pending.clone();
        let (death, died) = watch::channel(false);
        let reader = tokio::spawn(async move {
            let verdict = loop {
                let frame = match rx.recv().await {
                    Ok(Some(frame)) => frame,
                    Err(e @ RecvError::Rejected(_)) => {
                        tracing::warn!("rpc client: dropped a bad frame: {e}");
                        continue;
                    }
                    end => break Verdict::of(end),
                };
                let (kind, id, body) = match envelope.decode(frame) {
                    Ok(parts) => parts,
                    Err(e) => {
                        tracing::warn!("rpc client: {e}");
                        continue;
                    }
                };
                let answer = match kind {
                    Kind::Response => Ok(body),
                    Kind::Error => Err(Error::Remote(String::from_utf8_lossy(&body).into_owned())),
                    Kind::Request => {
                        tracing::warn!("rpc client: ignored a request (this side only calls)");
                        continue;
                    }
                };
                // A missing entry is a caller that gave up: drop the late answer.
                if let Some(waiter) = lock(&routes).waiting.remove(&id) {
                    let _ = waiter.send(answer);
                }
            };
            {
                let mut calls = lock(&routes);
                calls.dead = Some(verdict);
                calls.waiting.clear(); // wakes every waiter with a closed oneshot
            }
            let _ = death.send(true);
        });
        RpcClient {
            tx: tokio::sync::Mutex::new(tx),
            envelope,
            pending,
            died,
            closed_here: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            reader,
        }
    }

    /// The error for a call that ended because the channel is dead.
    fn dead_error(&self) -> Error {
        match &lock(&self.pending).dead {
            Some(verdict) => verdict.error(),
            None => Error::PeerLost("the rpc client's receive task stopped".into()),
        }
    }

    /// The error for a call whose request could not be sent because of `failed`.
    async fn send_error(&self, failed: Error) -> Error {
        if !failed.is_fatal() {
            return failed; // about this request only (too large)
        }
        if self.closed_here.load(Ordering::Acquire) {
            return Error::Closed;
        }
        // The server is gone; the receive side is about to say how. Report that, so
        // every caller gets the same error whichever side noticed first.
        let mut died = self.died.clone();
        if let Ok(Ok(_)) = tokio::time::timeout(VERDICT_GRACE, died.wait_for(|d| *d)).await {
            return self.dead_error();
        }
        match failed {
            Error::PeerLost(why) => Error::PeerLost(why),
            Error::Closed => Error::PeerLost("the channel to the server is closed".into()),
            other => Error::PeerLost(format!("the channel failed: {other}")),
        }
    }

    /// Send `request` and wait up to `timeout` for its response.
    ///
    /// Errors: [`Error::Timeout`] (this call only; others go on); [`Error::PeerLost`]
    /// for every call in flight or made later when the server went away without
    /// closing (crashed, killed), all with the same reason; [`Error::Closed`] after
    /// [`close`](Self::close), or when the server closed the channel leaving the call
    /// unanswered; [`Error::Remote`] carrying the server's error message when the
    /// handler failed or panicked; [`Error::Decode`] (this call only) for a request
    /// that is not a JSON text on a JSON-only channel.
    pub async fn call(&self, request: Bytes, timeout: Duration) -> Result<Bytes> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.envelope.encode(Kind::Request, id, &request)?;
        let (waiter, answer) = oneshot::channel();
        {
            let mut calls = lock(&self.pending);
            if let Some(verdict) = &calls.dead {
                return Err(verdict.error());
            }
            calls.waiting.insert(id, waiter);
        }
        let _guard = CallGuard {
            pending: self.pending.clone(),
            id,
        };
        let exchange = async {
            let sent = self.tx.lock().await.send(frame).await;
            if let Err(failed) = sent {
                return Err(self.send_error(failed.into()).await);
            }
            match answer.await {
                Ok(result) => result,
                Err(_) => Err(self.dead_error()),
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                after: timeout,
                during: "waiting for an rpc response",
            }),
        }
    }

    /// [`call`](Self::call) with serde values, encoded by codec `K`.
    pub async fn call_typed<K, Req, Resp>(&self, request: &Req, timeout: Duration) -> Result<Resp>
    where
        K: Codec,
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let reply = self.call(K::encode(request)?, timeout).await?;
        K::decode(&reply)
    }

    /// Calls waiting for a response right now.
    pub fn in_flight(&self) -> usize {
        lock(&self.pending).waiting.len()
    }

    /// Close the sending side; the server then ends its [`serve`] loop. Calls still
    /// in flight get their answers; later calls fail with [`Error::Closed`].
    pub async fn close(&self) -> Result<()> {
        self.closed_here.store(true, Ordering::Release);
        Ok(self.tx.lock().await.close().await?)
    }
}

impl Drop for RpcClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(a panic payload that is not text)"
    }
}

/// Serve requests arriving on `channel` with `handler` until the client closes.
///
/// Requests are handled concurrently (at most [`MAX_CONCURRENT_REQUESTS`] at once), so
/// a slow request does not hold up fast ones; responses go back as they finish. A handler
/// `Err(message)` reaches the caller as an error response ([`Error::Remote`]); so does
/// a handler that panics (`"the handler panicked: MESSAGE"`), and the server goes on
/// serving the others. Returns `Ok(())` when the client closed cleanly.
pub async fn serve<H, F>(channel: impl Channel, handler: H) -> Result<()>
where
    H: Fn(Bytes) -> F + Send + Sync + 'static,
    F: Future<Output = std::result::Result<Bytes, String>> + Send + 'static,
{
    let envelope = Envelope::for_channel(&channel.info());
    let (tx, mut rx) = (Box::new(channel) as Box<dyn Channel>).split();
    let tx = Arc::new(tokio::sync::Mutex::new(tx));
    let handler = Arc::new(handler);
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS));
    let mut tasks = tokio::task::JoinSet::new();
    let outcome = loop {
        let frame = match rx.recv().await {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(e @ RecvError::Rejected(_)) => {
                tracing::warn!("rpc server: dropped a bad frame: {e}");
                continue;
            }
            Err(e) => break Err(e.into()),
        };
        let (id, body) = match envelope.decode(frame) {
            Ok((Kind::Request, id, body)) => (id, body),
            Ok((kind, ..)) => {
                tracing::warn!("rpc server: ignored a {kind:?} (this side only serves)");
                continue;
            }
            Err(e) => {
                tracing::warn!("rpc server: {e}");
                continue;
            }
        };
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let (tx, handler) = (tx.clone(), handler.clone());
        tasks.spawn(async move {
            // The handler is called inside the guarded future, so a panic before it
            // returns its future is caught as well as one while it runs.
            let handled = AssertUnwindSafe(async move { handler(body).await })
                .catch_unwind()
                .await;
            let frame = match handled {
                Ok(Ok(reply)) => match envelope.encode(Kind::Response, id, &reply) {
                    Ok(frame) => frame,
                    Err(e) => {
                        let message = format!("the handler's reply cannot be sent: {e}");
                        tracing::error!("rpc server: request {id}: {message}");
                        envelope.encode_error(id, &message)
                    }
                },
                Ok(Err(message)) => envelope.encode_error(id, &message),
                Err(panic) => {
                    let message = format!("the handler panicked: {}", panic_message(&*panic));
                    tracing::error!("rpc server: request {id}: {message}");
                    envelope.encode_error(id, &message)
                }
            };
            let sent = tx.lock().await.send(frame).await;
            drop(permit);
            sent
        });
        while let Some(done) = tasks.try_join_next() {
            if let Ok(Err(e)) = done {
                tracing::warn!("rpc server: could not send a response: {e}");
            }
        }
    };
    while tasks.join_next().await.is_some() {}
    let _ = tx.lock().await.close().await;
    outcome
}
