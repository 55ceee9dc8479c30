//! The JSON body of each shared seat map, serialised once.
//!
//! `QueryService` hands every reader within `--seat-map-max-age` the same `Arc<SeatMap>`; turning
//! it into JSON for each of them was most of a seat-map request's cost (a flash sale with 200
//! readers spent 80% of the server's CPU samples in building DTOs, serde and malloc). The body is
//! kept beside a weak reference to its map and reused while that map is the one being shared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use axum::body::Bytes;
use ticketing_core::domain::{EventId, ZoneCode};
use ticketing_core::service::SeatMap;

use crate::dto::SeatMapDto;

/// An event's map, or one zone's.
type MapKey = (EventId, Option<ZoneCode>);

/// The last serialised body per map.
#[derive(Default)]
pub struct SeatMapBodies {
    last: Mutex<HashMap<MapKey, (Weak<SeatMap>, Bytes)>>,
}

impl SeatMapBodies {
    /// The JSON of `map` (the map of `key`): the body made for this very map if there is one,
    /// else a new one, kept while the map is shared. Bodies of maps nobody shares any more are
    /// dropped.
    pub fn body(&self, key: MapKey, map: &Arc<SeatMap>) -> Bytes {
        if let Some((shared, body)) = self.lock().get(&key)
            && shared.strong_count() > 0
            && std::ptr::eq(shared.as_ptr(), Arc::as_ptr(map))
        {
            return body.clone();
        }
        let body = Bytes::from(
            serde_json::to_vec(&SeatMapDto::from(&**map))
                .unwrap_or_else(|_| unreachable!("a seat map is plain JSON")),
        );
        let mut last = self.lock();
        last.retain(|_, (shared, _)| shared.strong_count() > 0);
        last.insert(key, (Arc::downgrade(map), body.clone()));
        body
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MapKey, (Weak<SeatMap>, Bytes)>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn map(event: EventId) -> Arc<SeatMap> {
        Arc::new(SeatMap {
            event,
            seated: Vec::new(),
            general: Vec::new(),
        })
    }

    #[test]
    fn a_shared_map_is_serialised_once_and_a_new_map_again() {
        let bodies = SeatMapBodies::default();
        let event = EventId::from_uuid(Uuid::now_v7());
        let first = map(event);
        let body = bodies.body((event, None), &first);
        assert!(body.starts_with(b"{\"eventId\""));
        let again = bodies.body((event, None), &first);
        assert_eq!(again.as_ptr(), body.as_ptr(), "the same bytes, not a copy");
        let second = map(event);
        let fresh = bodies.body((event, None), &second);
        assert_ne!(
            fresh.as_ptr(),
            body.as_ptr(),
            "another map is serialised anew"
        );
        drop((first, second));
        let other = EventId::from_uuid(Uuid::now_v7());
        bodies.body((other, None), &map(other));
        assert_eq!(
            bodies.lock().len(),
            1,
            "bodies of maps no longer shared are dropped"
        );
    }
}
