//! The demo page in a real browser: headless Chromium driven through chromedriver (fantoccini).
//! Buys a seat through the page, pays with "Simulate payment", sees the seat turn sold and saves
//! a screenshot to `target/browser/demo-page.png`; and with two browsers, sees a seat bought in
//! one turn grey in the other through the live seat map, without a reload
//! (`target/browser/demo-page-live.png`).
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

/// chromedriver on a free port (killed when dropped) and the Chromium it drives.
struct Browser {
    driver: tokio::process::Child,
    port: u16,
    binary: PathBuf,
    profiles: Vec<PathBuf>,
}

impl Browser {
    async fn start() -> Self {
        let driver = find_executable(&["/usr/bin/chromedriver", "chromedriver"]).unwrap_or_else(|| {
            panic!("chromedriver not found: install the Debian packages chromium and chromium-driver ({INSTALL})")
        });
        let binary = find_executable(&[
            "/usr/lib/chromium/chromium",
            "/usr/bin/chromium",
            "chromium",
        ])
        .unwrap_or_else(|| panic!("chromium not found: install it ({INSTALL})"));
        let port = common::free_port();
        let child = tokio::process::Command::new(&driver)
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
        Self {
            driver: child,
            port,
            binary,
            profiles: Vec::new(),
        }
    }

    /// A new headless Chromium session with a profile of its own: a separate browser.
    async fn session(&mut self) -> Client {
        let profile =
            std::env::temp_dir().join(format!("ticketing-chromium-{}", uuid::Uuid::new_v4()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": self.binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--window-size=1100,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        self.profiles.push(profile);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("chromedriver starts a Chromium session")
    }

    async fn stop(mut self) {
        let _ = self.driver.kill().await;
        for profile in &self.profiles {
            let _ = std::fs::remove_dir_all(profile);
        }
    }
}

/// Serves `app`'s router on a free loopback port; the address and the server task.
async fn serve(app: &TestApp) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.router.clone();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (address, server)
}

/// Saves `png` to `target/browser/<name>` and checks it shows something; returns the path.
fn save_screenshot(png: &[u8], name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    assert!(png.len() > 10_000, "the screenshot shows something");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_buys_and_pays_a_seat_in_chromium() {
    // The server, in-process on a free port, with the in-memory adapters and the demo event.
    let app = TestApp::in_memory().await;
    let (address, server) = serve(&app).await;
    let mut browser = Browser::start().await;
    let client = browser.session().await;

    let outcome = drive(&client, &format!("http://{address}/")).await;
    let screenshot = client.screenshot().await;
    let _ = client.close().await;
    browser.stop().await;
    server.abort();

    let path = save_screenshot(&screenshot.expect("a screenshot"), "demo-page.png");
    outcome.unwrap_or_else(|e| panic!("{e} (screenshot at {})", path.display()));

    // The page's sale is real: the server counts one sold seat.
    let sold = app
        .get(&format!("/api/events/{}/sold-count", app.demo.event))
        .await;
    assert_eq!(sold.body["soldCount"], 1);
}

/// Two browsers on the demo page: B opens it first; A buys and pays a seat; B shows the seat
/// held, then sold (grey), within a few seconds, without reading the map again (the live seat
/// map's stream, not a reload, changed it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_bought_in_one_browser_turns_grey_in_another_without_a_reload() {
    let app = TestApp::in_memory().await;
    let (address, server) = serve(&app).await;
    let url = format!("http://{address}/");
    let mut browser = Browser::start().await;
    let watcher = browser.session().await;
    let buyer = browser.session().await;

    let outcome = watch_and_buy(&watcher, &buyer, &url).await;
    let screenshot = watcher.screenshot().await;
    let _ = watcher.close().await;
    let _ = buyer.close().await;
    browser.stop().await;
    server.abort();

    let path = save_screenshot(&screenshot.expect("a screenshot"), "demo-page-live.png");
    outcome.unwrap_or_else(|e| panic!("{e} (screenshot of page B at {})", path.display()));
}

async fn watch_and_buy(watcher: &Client, buyer: &Client, url: &str) -> Result<(), String> {
    const SEAT: &str = r#"[data-seat="STALLS:C:7"]"#;
    watcher
        .goto(url)
        .await
        .map_err(|e| format!("page B cannot open the page: {e}"))?;
    wait_until(
        "page B to load and subscribe",
        Duration::from_secs(20),
        || async {
            attribute(watcher, "body", "data-ready").await.as_deref() == Some("true")
                && attribute(watcher, "body", "data-live").await.as_deref() == Some("open")
        },
    )
    .await;
    if attribute(watcher, SEAT, "data-state").await.as_deref() != Some("free") {
        return Err("seat C7 is not free on page B at the start".into());
    }
    let loads_before = attribute(watcher, "body", "data-map-loads").await;

    for (step, state) in [(Step::Buy, "held"), (Step::Pay, "sold")] {
        drive_seat(buyer, url, SEAT, step).await?;
        let started = Instant::now();
        wait_until(
            &format!("page B to show C7 {state}"),
            Duration::from_secs(5),
            || async { attribute(watcher, SEAT, "data-state").await.as_deref() == Some(state) },
        )
        .await;
        println!(
            "page B showed C7 {state} {:?} after page A's {step:?} answered",
            started.elapsed()
        );
    }
    let class = attribute(watcher, SEAT, "class").await;
    if class.as_deref() != Some("seat sold") {
        return Err(format!(
            "C7 on page B has class {class:?}, not the grey `seat sold`"
        ));
    }
    let loads_after = attribute(watcher, "body", "data-map-loads").await;
    if loads_after != loads_before {
        return Err(format!(
            "page B read the map again ({loads_before:?} → {loads_after:?}): the stream did not update it"
        ));
    }
    let changes: u32 = attribute(watcher, "body", "data-live-changes")
        .await
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if changes < 2 {
        return Err(format!(
            "page B applied {changes} live changes, not the purchase and the payment"
        ));
    }
    let neighbour = attribute(watcher, r#"[data-seat="STALLS:C:8"]"#, "data-state").await;
    if neighbour.as_deref() != Some("free") {
        return Err(format!("seat C8 on page B is {neighbour:?}, not free"));
    }
    Ok(())
}

/// What page A does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Opens the page and buys the seat.
    Buy,
    /// Pays for the order.
    Pay,
}

/// Page A: opens the page and buys `seat`, or pays for it; returns when the page shows the
/// order's new status.
async fn drive_seat(client: &Client, url: &str, seat: &str, step: Step) -> Result<(), String> {
    if step == Step::Pay {
        client
            .find(Locator::Id("pay"))
            .await
            .map_err(|e| e.to_string())?
            .click()
            .await
            .map_err(|e| e.to_string())?;
        wait_until("page A's payment", Duration::from_secs(10), || async {
            text(client, "#order-status").await.as_deref() == Some("PAID")
        })
        .await;
        return Ok(());
    }
    client
        .goto(url)
        .await
        .map_err(|e| format!("page A cannot open the page: {e}"))?;
    wait_until(
        "page A to load the seat map",
        Duration::from_secs(20),
        || async { attribute(client, "body", "data-ready").await.as_deref() == Some("true") },
    )
    .await;
    for (css, what) in [(seat, "the seat"), ("#buy", "buy")] {
        client
            .find(Locator::Css(css))
            .await
            .map_err(|e| format!("{what}: {e}"))?
            .click()
            .await
            .map_err(|e| format!("{what}: {e}"))?;
    }
    wait_until("page A's order", Duration::from_secs(10), || async {
        text(client, "#order-status").await.as_deref() == Some("PENDING_PAYMENT")
    })
    .await;
    Ok(())
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
