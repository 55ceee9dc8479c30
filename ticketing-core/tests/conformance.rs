//! The conformance suite against the in-memory adapters, the reference model.

async fn harness() -> ticketing_core::testkit::Harness {
    ticketing_core::testkit::Harness::in_memory()
}

ticketing_core::conformance_suite!(harness);
