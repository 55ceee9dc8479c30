//! The demo page in a real browser: headless Chromium driven through chromedriver (fantoccini).
//! Buys a seat through the page, pays with "Simulate payment", sees the seat turn sold and saves
//! a screenshot to `target/browser/demo-page.png`.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`; without chromedriver the test fails
//! and says so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::TestApp;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const INSTALL: &str = "apt-get install -y chromium chromium-driver";

fn find_executable(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path).find_map(|dir| {
                candidates
                    .iter()
                    .filter_map(|c| Path::new(c).file_name())
                    .map(|name| dir.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Polls `check` until it is true or `timeout` passes.
async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn attribute(client: &Client, css: &str, name: &str) -> Option<String> {
    let element = client.find(Locator::Css(css)).await.ok()?;
    element.attr(name).await.ok().flatten()
}

async fn text(client: &Client, css: &str) -> Option<String> {
    client.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_buys_and_pays_a_seat_in_chromium() {
    let driver = find_executable(&["/usr/bin/chromedriver", "chromedriver"]).unwrap_or_else(|| {
        panic!("chromedriver not found: install the Debian packages chromium and chromium-driver ({INSTALL})")
    });
    let browser = find_executable(&[
        "/usr/lib/chromium/chromium",
        "/usr/bin/chromium",
        "chromium",
    ])
    .unwrap_or_else(|| panic!("chromium not found: install it ({INSTALL})"));

    // The server, in-process on a free port, with the in-memory adapters and the demo event.
    let app = TestApp::in_memory().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    // chromedriver on a free port, killed when the test ends.
    let port = common::free_port();
    let mut chromedriver = tokio::process::Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e} ({INSTALL})", driver.display()));
    wait_until("chromedriver", Duration::from_secs(20), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;

    let profile = std::env::temp_dir().join(format!("ticketing-chromium-{}", uuid::Uuid::new_v4()));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": browser,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1100,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("chromedriver starts a Chromium session");

    let outcome = drive(&client, &format!("http://{address}/")).await;
    let screenshot = client.screenshot().await;
    let _ = client.close().await;
    let _ = chromedriver.kill().await;
    server.abort();
    let _ = std::fs::remove_dir_all(&profile);

    let png = screenshot.expect("a screenshot");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("demo-page.png");
    std::fs::write(&path, &png).unwrap();
    println!("screenshot: {}", path.display());
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    assert!(png.len() > 10_000, "the screenshot shows something");
    outcome.unwrap_or_else(|e| panic!("{e} (screenshot at {})", path.display()));

    // The page's sale is real: the server counts one sold seat.
    let sold = app
        .get(&format!("/api/events/{}/sold-count", app.demo.event))
        .await;
    assert_eq!(sold.body["soldCount"], 1);
}

/// Buys STALLS:B:5 through the page and pays for it; returns a description of what went wrong.
async fn drive(client: &Client, url: &str) -> Result<(), String> {
    const SEAT: &str = r#"[data-seat="STALLS:B:5"]"#;
    client
        .goto(url)
        .await
        .map_err(|e| format!("cannot open the page: {e}"))?;
    wait_until(
        "the page to load the seat map",
        Duration::from_secs(20),
        || async { attribute(client, "body", "data-ready").await.as_deref() == Some("true") },
    )
    .await;
    let title = text(client, "#event-name").await;
    if title.as_deref() != Some("Demo Night") {
        return Err(format!("the page shows event {title:?}"));
    }
    if attribute(client, SEAT, "data-state").await.as_deref() != Some("free") {
        return Err("seat B5 is not free at the start".into());
    }
    let seats = client
        .find_all(Locator::Css("button.seat"))
        .await
        .map_err(|e| e.to_string())?;
    if seats.len() != 60 {
        return Err(format!("the map shows {} seats, not 60", seats.len()));
    }

    client
        .find(Locator::Css(SEAT))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    if attribute(client, SEAT, "class").await.as_deref() != Some("seat selected") {
        return Err("clicking the seat did not select it".into());
    }
    client
        .find(Locator::Id("buy"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    wait_until("the order to appear", Duration::from_secs(10), || async {
        text(client, "#order-status").await.as_deref() == Some("PENDING_PAYMENT")
    })
    .await;
    wait_until("the seat to turn held", Duration::from_secs(10), || async {
        attribute(client, SEAT, "data-state").await.as_deref() == Some("held")
    })
    .await;

    client
        .find(Locator::Id("pay"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    wait_until("the order to be paid", Duration::from_secs(10), || async {
        text(client, "#order-status").await.as_deref() == Some("PAID")
    })
    .await;
    wait_until("the seat to turn sold", Duration::from_secs(10), || async {
        attribute(client, SEAT, "data-state").await.as_deref() == Some("sold")
    })
    .await;
    let message = text(client, "#message").await.unwrap_or_default();
    if !message.contains("Payment confirmed") {
        return Err(format!("the page says {message:?}"));
    }
    let neighbour = attribute(client, r#"[data-seat="STALLS:B:6"]"#, "data-state").await;
    if neighbour.as_deref() != Some("free") {
        return Err(format!("seat B6 is {neighbour:?}, not free"));
    }
    Ok(())
}
