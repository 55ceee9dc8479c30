//! NATS test support: the shared server, a stream per test, a private `nats-server`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream::context::GetStreamErrorKind;

use super::{free_port, unique};
use crate::nats::NatsStreamConfig;

/// The environment variable naming the shared NATS server (with JetStream).
pub const NATS_URL_VAR: &str = "TICKETING_NATS_URL";

/// The shared server when [`NATS_URL_VAR`] is not set.
pub const NATS_DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// The shared server's URL.
pub fn nats_url() -> String {
    std::env::var(NATS_URL_VAR).unwrap_or_else(|_| NATS_DEFAULT_URL.into())
}

/// A client of `url`; panics naming [`NATS_URL_VAR`] when the server cannot be reached.
pub async fn nats_client(url: &str) -> async_nats::Client {
    crate::nats::connect(url).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach NATS at {url}: {e}. Start nats-server -js or point {NATS_URL_VAR} at one."
        )
    })
}

/// A stream and subject of one test alone.
pub fn test_stream() -> NatsStreamConfig {
    let name = unique("");
    NatsStreamConfig {
        stream: format!("TEST_{name}"),
        subject: format!("test.{name}"),
    }
}

/// A `nats-server` of one test alone: JetStream with its store in a temporary directory, on a
/// free loopback port. Killed and its store removed on drop.
pub struct PrivateNats {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl PrivateNats {
    /// Starts `nats-server` (from `PATH`, or `/usr/sbin`) and waits until it answers.
    pub async fn start() -> Self {
        let store = std::env::temp_dir().join(unique("ticketing-nats-"));
        std::fs::create_dir_all(&store).expect("a temporary store directory");
        let mut server = Self {
            port: free_port(),
            store,
            child: None,
        };
        server.spawn().await;
        server
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let binary = if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (needed by the NATS chaos tests)");
        self.child = Some(child);
        let mut last_error = String::new();
        for _ in 0..200 {
            match async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_millis(500))
                .connect(self.url())
                .await
            {
                // JetStream is up once it answers a request (here: "no such stream").
                Ok(client) => match async_nats::jetstream::new(client)
                    .get_stream("READINESS_PROBE")
                    .await
                {
                    Ok(_) => return,
                    Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(_)) => return,
                    Err(e) => last_error = e.to_string(),
                },
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "private nats-server on port {} did not start: {last_error}",
            self.port
        );
    }

    /// Kills the server (SIGKILL, like a crash); its store stays for a restart.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
