//! The port contracts against the in-memory adapters: `InMemorySeatLock` and the outbox of
//! `InMemoryTicketRepository`. One test per check, each on a fresh adapter.

mod seat_lock {
    use std::sync::Arc;

    use ticketing_core::memory::InMemorySeatLock;
    use ticketing_core::testkit::contracts::seat_lock::{
        self, SeatLockCapabilities, SeatLockContext,
    };

    /// The in-memory lock accepts a seat listed twice (the caller's rule, not checked here). Its
    /// rebuild lease is a mutex held for the whole rebuild: it cannot lapse.
    const CAPABILITIES: SeatLockCapabilities = SeatLockCapabilities {
        rejects_duplicate_items: false,
        rebuild_lease: None,
    };

    /// A fresh lock; every race runs on it (it has no second process).
    fn context() -> SeatLockContext {
        SeatLockContext::single(Arc::new(InMemorySeatLock::new()), CAPABILITIES)
    }

    /// [`context`] as the contract macro takes it: nothing to remove afterwards.
    async fn fresh() -> (SeatLockContext, ()) {
        (context(), ())
    }

    async fn finish(_: ()) {}

    ticketing_core::seat_lock_contract!(fresh, finish);

    // `a_rebuilder_that_lost_its_lease_writes_nothing_more` does not apply: the lease cannot
    // lapse.

    // `forgetting_an_event_drops_only_that_event` does not apply: the in-memory lock forgets
    // every event at once (`wipe`), never one.

    /// The whole suite on one lock, as `run_all` runs it for an adapter outside a test harness.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn run_all_on_one_lock() {
        seat_lock::run_all(&context()).await;
    }
}

mod outbox_store {
    use std::sync::Arc;

    use ticketing_core::memory::InMemoryTicketRepository;
    use ticketing_core::testkit::contracts::outbox_store::{
        self, OutboxStoreContext, ReservationFeed,
    };

    fn context() -> OutboxStoreContext {
        let repo = Arc::new(InMemoryTicketRepository::new());
        OutboxStoreContext {
            store: repo.clone(),
            feed: Arc::new(ReservationFeed::new(repo)),
        }
    }

    macro_rules! checks {
        (store: $($check:ident),* $(,)?) => {$(
            #[tokio::test]
            async fn $check() {
                outbox_store::$check(context().store.as_ref()).await;
            }
        )*};
        (fed: $($check:ident),* $(,)?) => {$(
            #[tokio::test]
            async fn $check() {
                let c = context();
                outbox_store::$check(c.store.as_ref(), c.feed.as_ref()).await;
            }
        )*};
    }

    checks!(store:
        the_lease_is_exclusive_until_it_lapses,
        the_holder_renews_its_lease,
        only_the_holder_releases_the_lease,
    );
    checks!(fed:
        only_the_lease_holder_moves_the_cursor,
        mark_sent_never_moves_the_cursor_back,
        rewind_moves_the_cursor_back_only,
        unsent_reads_after_the_cursor_in_sequence_order,
        unsent_returns_at_most_the_batch_limit,
        prune_deletes_only_published_entries_before_the_cut_off,
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_relays_take_the_lease_once() {
        outbox_store::concurrent_relays_take_the_lease_once(&context().store).await;
    }

    /// The whole suite, each check on a fresh repository.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn run_all_on_fresh_stores() {
        outbox_store::run_all(|| async { context() }).await;
    }
}

mod event_sink {
    use std::sync::Arc;

    use async_trait::async_trait;
    use ticketing_core::domain::OutboxEntry;
    use ticketing_core::memory::InMemoryEventSink;
    use ticketing_core::ports::EventSink;
    use ticketing_core::testkit::contracts::event_sink::{self, EventSinkCapabilities, SinkLog};

    /// The in-memory sink refuses a sequence number not above its top, as Redis Streams does.
    const CAPABILITIES: EventSinkCapabilities = EventSinkCapabilities {
        drops_duplicates: true,
    };

    struct Log(Arc<InMemoryEventSink>);

    #[async_trait]
    impl SinkLog for Log {
        async fn held(&self) -> Vec<OutboxEntry> {
            self.0.entries()
        }

        async fn lose_everything(&self) {
            self.0.lose_everything();
        }

        async fn remove(&self) {}
    }

    async fn fresh() -> (Arc<dyn EventSink>, Log) {
        let sink = Arc::new(InMemoryEventSink::new());
        (sink.clone(), Log(sink))
    }

    ticketing_core::event_sink_contract!(fresh, CAPABILITIES);

    /// The whole suite through `run_all`.
    #[tokio::test]
    async fn run_all_on_fresh_sinks() {
        event_sink::run_all(fresh, CAPABILITIES).await;
    }
}

/// The `WaitingRoom` contract on `InMemoryWaitingRoom`.
mod waiting_room {
    use std::sync::Arc;

    use ticketing_core::memory::InMemoryWaitingRoom;
    use ticketing_core::ports::WaitingRoom;

    async fn fresh() -> (Arc<dyn WaitingRoom>, ()) {
        (Arc::new(InMemoryWaitingRoom::new()), ())
    }

    ticketing_core::waiting_room_contract!(fresh);
}

/// The `WaitingList` contract on `InMemoryWaitingList`, beside the in-memory repository whose
/// outbox gets its offers.
mod waiting_list {
    use std::sync::Arc;

    use ticketing_core::memory::{InMemoryCatalog, InMemoryTicketRepository, InMemoryWaitingList};
    use ticketing_core::testkit::contracts::waiting_list::WaitingListContext;

    async fn fresh() -> (WaitingListContext, ()) {
        let tickets = Arc::new(InMemoryTicketRepository::new());
        let ctx = WaitingListContext {
            list: Arc::new(InMemoryWaitingList::new(tickets.clone())),
            outbox: tickets.clone(),
            tickets,
            catalog: Arc::new(InMemoryCatalog::new()),
        };
        (ctx, ())
    }

    ticketing_core::waiting_list_contract!(fresh);
}
