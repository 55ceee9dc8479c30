//! The load generator's HTTP/1 client: keep-alive connections, at most a given number open at
//! once (the concurrency: each buyer has one request in flight), a timeout on every request,
//! every connection it opens counted, and every failure classified so the report can count it.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use serde::de::DeserializeOwned;
use ticketing_server::error::ErrorBody;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a request may take, connection included, when not configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long opening a TCP connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A request that got no HTTP answer, or an answer the caller did not expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// No answer within the request timeout. The request may have taken effect.
    Timeout,
    /// No TCP connection could be opened. The request was never sent.
    Connect(String),
    /// The connection failed after the request was (possibly) sent. It may have taken effect.
    Transport(String),
    /// An answer with an unexpected status; `code` is the server's error code when the body
    /// is the server's JSON error.
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// `code` of the JSON error body (e.g. `UNAVAILABLE`), if any.
        code: Option<String>,
        /// The error message of the body, or the body itself.
        message: String,
    },
    /// A 2xx answer whose body did not parse.
    Body(String),
}

impl RequestError {
    /// A short stable name for counting failures by kind, e.g. `HTTP 503 UNAVAILABLE`.
    pub fn kind(&self) -> String {
        match self {
            RequestError::Timeout => "timeout".into(),
            RequestError::Connect(_) => "connect error".into(),
            RequestError::Transport(_) => "connection error".into(),
            RequestError::Status { status, code, .. } => match code {
                Some(code) => format!("HTTP {} {code}", status.as_u16()),
                None => format!("HTTP {}", status.as_u16()),
            },
            RequestError::Body(_) => "unreadable answer".into(),
        }
    }

    /// Whether the request may have taken effect although its caller saw this error: a timeout,
    /// a connection lost mid-request, a 5xx (the server may have committed before failing), or
    /// the server's own 408 (it answers when the request outlives its time limit, but the write
    /// runs on to completion in a task of its own, so it may still commit).
    pub fn outcome_unknown(&self) -> bool {
        match self {
            RequestError::Timeout | RequestError::Transport(_) => true,
            RequestError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::REQUEST_TIMEOUT
            }
            RequestError::Connect(_) | RequestError::Body(_) => false,
        }
    }

    /// The server's error code, when the answer carried one.
    pub fn code(&self) -> Option<&str> {
        match self {
            RequestError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Builds the error of a non-success answer from its status and body.
    pub fn from_answer(status: StatusCode, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(error) => RequestError::Status {
                status,
                code: Some(error.code),
                message: error.message,
            },
            Err(_) => RequestError::Status {
                status,
                code: None,
                message: String::from_utf8_lossy(body).chars().take(200).collect(),
            },
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Timeout => write!(f, "no answer within the request timeout"),
            RequestError::Connect(why) => write!(f, "cannot connect: {why}"),
            RequestError::Transport(why) => write!(f, "connection failed: {why}"),
            RequestError::Status {
                status, message, ..
            } => write!(f, "HTTP {status}: {message}"),
            RequestError::Body(why) => write!(f, "unreadable answer: {why}"),
        }
    }
}

impl std::error::Error for RequestError {}

/// An HTTP answer: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The body as `T` when the status is `expected`; otherwise the answer as an error.
    pub fn expect<T: DeserializeOwned>(&self, expected: StatusCode) -> Result<T, RequestError> {
        if self.status != expected {
            return Err(RequestError::from_answer(self.status, &self.body));
        }
        serde_json::from_slice(&self.body).map_err(|e| RequestError::Body(e.to_string()))
    }
}

/// A keep-alive HTTP/1 client shared by all buyers. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<BoundedConnector, Full<Bytes>>,
    timeout: Duration,
    opened: Arc<AtomicU64>,
}

impl HttpClient {
    /// A client with at most `max_connections` connections open at once over all servers (use
    /// the concurrency: each buyer has one request in flight and reuses one connection), giving
    /// each request `timeout` from sending to the last byte of the answer, a wait for a free
    /// connection included.
    pub fn new(max_connections: usize, timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let opened = Arc::new(AtomicU64::new(0));
        let connector = BoundedConnector {
            inner: http,
            open: Arc::new(Semaphore::new(max_connections.max(1))),
            opened: opened.clone(),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_connections.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Self {
            client,
            timeout,
            opened,
        }
    }

    /// TCP connections opened so far (a keep-alive run opens about one per buyer).
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<Answer, RequestError> {
        self.send(Method::GET, url, &[], Bytes::new()).await
    }

    /// `GET url` with extra `headers`.
    pub async fn get_with(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, RequestError> {
        self.send(Method::GET, url, headers, Bytes::new()).await
    }

    /// `POST url` with `body` as JSON and extra `headers`.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &impl Serialize,
    ) -> Result<Answer, RequestError> {
        let bytes = serde_json::to_vec(body).map_err(|e| RequestError::Body(e.to_string()))?;
        self.post_bytes(url, headers, Bytes::from(bytes)).await
    }

    /// `POST url` with a JSON body given as bytes (a signed webhook must send exactly the bytes
    /// it signed).
    pub async fn post_bytes(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer, RequestError> {
        self.send(Method::POST, url, headers, body).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer, RequestError> {
        let request = build_request(method, url, headers, body)?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    RequestError::Connect(error_chain(&e))
                } else {
                    RequestError::Transport(error_chain(&e))
                }
            })?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| RequestError::Transport(error_chain(&e)))?
                .to_bytes();
            Ok(Answer {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(RequestError::Timeout))
    }
}

fn build_request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, RequestError> {
    let mut builder = Request::builder().method(method).uri(url);
    if !body.is_empty() {
        builder = builder.header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(body))
        .map_err(|e| RequestError::Connect(format!("invalid request to {url}: {e}")))
}

/// The error and its sources on one line (hyper's top-level message alone is often just
/// "client error (Connect)").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// [`HttpConnector`] opening at most as many connections at once as its semaphore has permits
/// (a connection gives its permit back when it closes), and counting the connections it opens.
///
/// The bound matters because hyper's pool races a new connection against a connection coming
/// back to the pool; the loser is pooled too, so without it a run could hold more connections
/// than buyers.
#[derive(Clone)]
struct BoundedConnector {
    inner: HttpConnector,
    open: Arc<Semaphore>,
    opened: Arc<AtomicU64>,
}

type Connecting = Pin<
    Box<
        dyn Future<
                Output = Result<TokioIo<BoundedStream>, Box<dyn std::error::Error + Send + Sync>>,
            > + Send,
    >,
>;

impl tower::Service<Uri> for BoundedConnector {
    type Response = TokioIo<BoundedStream>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let (open, opened) = (self.open.clone(), self.opened.clone());
        Box::pin(async move {
            let permit = open.acquire_owned().await?;
            let stream = connecting.await?.into_inner();
            opened.fetch_add(1, Ordering::Relaxed);
            Ok(TokioIo::new(BoundedStream {
                stream,
                _permit: permit,
            }))
        })
    }
}

/// A TCP connection holding one of the connector's permits until it is dropped.
struct BoundedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Connection for BoundedStream {
    fn connected(&self) -> Connected {
        self.stream.connected()
    }
}

impl AsyncRead for BoundedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for BoundedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_by_status_and_code() {
        let body = br#"{"code":"UNAVAILABLE","message":"redis is unavailable; retry later","path":"/api/tickets","traceId":"x"}"#;
        let error = RequestError::from_answer(StatusCode::SERVICE_UNAVAILABLE, body);
        assert_eq!(error.kind(), "HTTP 503 UNAVAILABLE");
        assert_eq!(error.code(), Some("UNAVAILABLE"));
        assert!(error.outcome_unknown());
        let error = RequestError::from_answer(StatusCode::BAD_GATEWAY, b"upstream down");
        assert_eq!(error.kind(), "HTTP 502");
        assert!(RequestError::Timeout.outcome_unknown());
        assert!(!RequestError::Connect("refused".into()).outcome_unknown());
        let refused = RequestError::from_answer(StatusCode::UNAUTHORIZED, b"{}");
        assert!(!refused.outcome_unknown());
        // The server's time limit answered, but its detached write may still commit.
        let timed_out = RequestError::from_answer(StatusCode::REQUEST_TIMEOUT, b"{}");
        assert!(timed_out.outcome_unknown());
    }
}
