//! The example HTTP server of the ticketing library: a thin layer that maps HTTP to the core
//! services and wires the adapters together. See the README for the routes and a quick start.
//!
//! The binary (`src/main.rs`) only parses flags and calls [`run`]; tests build the same
//! [`app::router`] over in-memory or real adapters.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod app;
pub mod auth;
pub mod config;
pub mod contract;
pub mod demo;
pub mod dto;
pub mod error;
pub mod event_stream;
pub mod extract;
pub mod limits;
pub mod live_seat_map;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod rate_limit;
pub mod routes;
pub mod seat_map_bodies;
pub mod seat_map_pacing;
pub mod webhook;

use std::future::Future;

use ticketing_core::service::{ClosedEventSweep, HistoryPruner};
use uuid::Uuid;

use crate::app::{AppConfig, AppState};
use crate::config::Args;
use crate::webhook::WebhookSecret;

/// Any start-up failure, for `main`.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Connects the backends, seeds the demo, serves until `shutdown` completes, then lets in-flight
/// requests finish (for at most `--shutdown-grace`) and stops the expiry sweep.
pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    // Settings first: a misconfiguration fails before any connection is made.
    let customers = args.customer_auth()?;
    let admission_secret = args.admission_secret()?;
    let service = args.service_config();
    let (backends, outbox) = args.connect_backends_with_outbox().await?;
    let clock = backends.clock().clone();
    // The relay also mirrors every committed change into the seat lock, repairing an update
    // that was lost between a commit and the service's own lock call, and then offers the
    // seats a change freed to the waiting list.
    let repairs = event_stream::repair_sinks(&backends, &service, args.waiting_list_config())?;
    let admin_token = match &args.admin_token {
        Some(token) if !token.trim().is_empty() => token.clone(),
        _ => {
            let token = Uuid::new_v4().simple().to_string();
            println!("no --admin-token given; admin token for this run: {token}");
            token
        }
    };
    let webhook_secret = match &args.webhook_secret {
        Some(secret) if !secret.is_empty() => WebhookSecret::new(secret),
        _ => {
            tracing::warn!(
                "no --webhook-secret given: using a random one, so only the demo's simulated payments verify"
            );
            WebhookSecret::new(Uuid::new_v4().as_bytes())
        }
    };
    let demo = if args.demo_mode() {
        let catalog = ticketing_core::service::CatalogService::new(backends.clone());
        Some(demo::seed(&catalog, backends.clock().now()).await?)
    } else {
        None
    };
    let closed_events = ClosedEventSweep::new(backends.clone(), &service);
    let state = AppState::new(
        backends,
        AppConfig {
            admin_token,
            webhook_secret,
            demo,
            demo_payments: args.demo_payments(),
            customers,
            purchase_rate: args.purchase_rate(),
            seat_map_reads: args.seat_map_reads(),
            live_seat_map: args.live_seat_map(),
            service,
            admission_secret,
        },
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    println!(
        "ticketing-server listening on http://{address} ({})",
        args.describe_backends()
    );
    if let Some(demo) = demo {
        println!(
            "demo page: http://{address}/  (venue {}, event {})",
            demo.venue, demo.event
        );
    }
    let (stop_sweep, stopped) = tokio::sync::watch::channel(false);
    let pruner = HistoryPruner::new(state.backends(), outbox.clone(), args.retention_config())?;
    let pruning = tokio::spawn(app::prune_history(
        pruner,
        closed_events,
        args.prune_interval,
        stopped.clone(),
    ));
    let live = state.live_seat_map().clone();
    let following = {
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            live.follow(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await;
        })
    };
    let sweeper = tokio::spawn(app::sweep(state.clone(), args.sweep_interval, stopped));
    let events = event_stream::EventStream::start(&args, outbox, repairs, clock).await?;
    if !events.running().is_empty() {
        println!("event stream: {}", events.running().join(", "));
    }
    let limits = args.http_limits();
    let live = state.live_seat_map().clone();
    let router = app::router_with_limits(state, &limits);
    // The seat-change streams never end by themselves: they end at the shutdown signal, so the
    // connection drain does not wait out its grace for them.
    let shutdown = async move {
        shutdown.await;
        live.close();
    };
    limits::serve(listener, router, limits, shutdown).await;
    let _ = stop_sweep.send(true);
    let _ = sweeper.await;
    let _ = following.await;
    let _ = pruning.await;
    events.stop().await;
    println!("ticketing-server stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
