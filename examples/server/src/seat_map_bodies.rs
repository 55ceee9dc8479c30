//! The JSON body of each shared seat map, serialised once, and the HTTP caching of it.
//!
//! `QueryService` hands every reader within `--seat-map-max-age` the same `Arc<SeatMap>`; turning
//! it into JSON for each of them was most of a seat-map request's cost (a flash sale with 200
//! readers spent 80% of the server's CPU samples in building DTOs, serde and malloc). The body is
//! kept beside a weak reference to its map and reused while that map is the one being shared.
//!
//! What was left was bytes: 200 clients reading a 100,000-seat map in a loop moved over a GB/s of
//! JSON. So a body also carries an entity tag (a hash of its JSON), answered with `304 Not
//! Modified` when the client already has it, and a gzip copy, made once on the first request
//! that accepts it.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use ticketing_core::domain::{EventId, ZoneCode};
use ticketing_core::service::SeatMap;

use crate::dto::SeatMapDto;

/// An event's map, or one zone's.
type MapKey = (EventId, Option<ZoneCode>);

/// Per map, the shared map a body was made of and the body.
type Kept = HashMap<MapKey, (Weak<SeatMap>, Arc<SeatMapBody>)>;

/// One map's answer in every form a client may get it.
#[derive(Debug)]
pub struct SeatMapBody {
    json: Bytes,
    etag: HeaderValue,
    gzip: OnceLock<Bytes>,
}

impl SeatMapBody {
    fn new(map: &SeatMap) -> Self {
        let json = Bytes::from(
            serde_json::to_vec(&SeatMapDto::from(map))
                .unwrap_or_else(|_| unreachable!("a seat map is plain JSON")),
        );
        // Weak: the gzip and the plain answer are the same map, and If-None-Match compares weakly.
        let digest = Sha256::digest(&json);
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let etag = HeaderValue::try_from(format!("W/\"{hex}\""))
            .unwrap_or_else(|_| unreachable!("hex is a valid header value"));
        Self {
            json,
            etag,
            gzip: OnceLock::new(),
        }
    }

    /// The JSON.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The entity tag, e.g. `W/"3f2a…"`: equal for equal maps, whichever server made them.
    pub fn etag(&self) -> &HeaderValue {
        &self.etag
    }

    /// The JSON gzipped, made on the first call.
    fn gzip(&self) -> &Bytes {
        self.gzip.get_or_init(|| {
            let mut encoder =
                GzEncoder::new(Vec::with_capacity(self.json.len() / 4), Compression::fast());
            encoder
                .write_all(&self.json)
                .and_then(|()| encoder.finish())
                .map(Bytes::from)
                .unwrap_or_else(|_| unreachable!("writing to a Vec cannot fail"))
        })
    }

    /// The answer to a request with `headers`: `304` when its `If-None-Match` names this body,
    /// else `200` with the JSON, gzipped when the client accepts gzip. `cache_control` is sent
    /// either way.
    pub fn answer(&self, headers: &HeaderMap, cache_control: &HeaderValue) -> Response {
        let validators = [
            (header::ETAG, self.etag.clone()),
            (header::CACHE_CONTROL, cache_control.clone()),
            (header::VARY, HeaderValue::from_static("accept-encoding")),
        ];
        if if_none_match_names(headers, &self.etag) {
            return (StatusCode::NOT_MODIFIED, validators).into_response();
        }
        let json = HeaderValue::from_static("application/json");
        if accepts_gzip(headers) {
            let gzip = [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))];
            (
                validators,
                gzip,
                [(header::CONTENT_TYPE, json)],
                self.gzip().clone(),
            )
                .into_response()
        } else {
            (
                validators,
                [(header::CONTENT_TYPE, json)],
                self.json.clone(),
            )
                .into_response()
        }
    }
}

/// The last serialised body per map.
#[derive(Debug)]
pub struct SeatMapBodies {
    last: Mutex<Kept>,
    cache_control: HeaderValue,
}

impl SeatMapBodies {
    /// Bodies of maps reused for `max_age`; clients may keep an answer that long
    /// (`Cache-Control: max-age`, whole seconds), or must ask again (`no-cache`, with the entity
    /// tag, so an unchanged map costs them a `304`).
    pub fn new(max_age: Duration) -> Self {
        let cache_control = match max_age.as_secs() {
            0 => HeaderValue::from_static("no-cache"),
            secs => HeaderValue::try_from(format!("max-age={secs}"))
                .unwrap_or_else(|_| unreachable!("digits are a valid header value")),
        };
        Self {
            last: Mutex::default(),
            cache_control,
        }
    }

    /// The answer to a request with `headers` for `map`, the map of `key`; see
    /// [`SeatMapBody::answer`].
    pub fn answer(&self, key: MapKey, map: &Arc<SeatMap>, headers: &HeaderMap) -> Response {
        self.body(key, map).answer(headers, &self.cache_control)
    }

    /// The body of `map` (the map of `key`): the body made for this very map if there is one,
    /// else a new one, kept while the map is shared. Bodies of maps nobody shares any more are
    /// dropped.
    pub fn body(&self, key: MapKey, map: &Arc<SeatMap>) -> Arc<SeatMapBody> {
        if let Some((shared, body)) = self.lock().get(&key)
            && shared.strong_count() > 0
            && std::ptr::eq(shared.as_ptr(), Arc::as_ptr(map))
        {
            return body.clone();
        }
        let body = Arc::new(SeatMapBody::new(map));
        let mut last = self.lock();
        last.retain(|_, (shared, _)| shared.strong_count() > 0);
        last.insert(key, (Arc::downgrade(map), body.clone()));
        body
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `If-None-Match` is `*` or lists `etag`, compared weakly (RFC 9110 13.1.2: `W/` aside).
fn if_none_match_names(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = opaque_tag(etag.to_str().unwrap_or_default());
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || opaque_tag(tag) == ours)
}

fn opaque_tag(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// Whether `Accept-Encoding` accepts gzip: `gzip` or `*` listed without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|param| {
                param
                    .strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use uuid::Uuid;

    fn map(event: EventId) -> Arc<SeatMap> {
        Arc::new(SeatMap {
            event,
            seated: Vec::new(),
            general: Vec::new(),
        })
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    async fn body_of(response: Response) -> Bytes {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
    }

    #[test]
    fn a_shared_map_is_serialised_once_and_a_new_map_again() {
        let bodies = SeatMapBodies::new(Duration::from_secs(1));
        let event = EventId::from_uuid(Uuid::now_v7());
        let first = map(event);
        let body = bodies.body((event, None), &first);
        assert!(body.json().starts_with(b"{\"eventId\""));
        let again = bodies.body((event, None), &first);
        assert!(Arc::ptr_eq(&again, &body), "the same body, not a copy");
        let second = map(event);
        let fresh = bodies.body((event, None), &second);
        assert!(
            !Arc::ptr_eq(&fresh, &body),
            "another map is serialised anew"
        );
        assert_eq!(fresh.etag(), body.etag(), "an equal map has the same tag");
        drop((first, second));
        let other = EventId::from_uuid(Uuid::now_v7());
        bodies.body((other, None), &map(other));
        assert_eq!(
            bodies.lock().len(),
            1,
            "bodies of maps no longer shared are dropped"
        );
        let third = map(other);
        let another = bodies.body((event, None), &map(event));
        assert_ne!(
            bodies.body((other, None), &third).etag(),
            another.etag(),
            "another event's map has another tag"
        );
    }

    #[tokio::test]
    async fn a_client_with_the_tag_gets_not_modified() {
        let bodies = SeatMapBodies::new(Duration::from_secs(1));
        let event = EventId::from_uuid(Uuid::now_v7());
        let shared = map(event);
        let first = bodies.answer((event, None), &shared, &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CACHE_CONTROL], "max-age=1");
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert!(etag.starts_with("W/\""), "{etag}");
        assert_eq!(
            body_of(first).await,
            bodies.body((event, None), &shared).json()
        );

        for if_none_match in [etag.as_str(), etag.trim_start_matches("W/"), "\"x\", *"] {
            let again = bodies.answer(
                (event, None),
                &shared,
                &headers(&[(header::IF_NONE_MATCH, if_none_match)]),
            );
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{if_none_match}");
            assert_eq!(again.headers()[header::ETAG], etag.as_str());
            assert!(body_of(again).await.is_empty());
        }
        let stale = bodies.answer(
            (event, None),
            &shared,
            &headers(&[(header::IF_NONE_MATCH, "W/\"0123\"")]),
        );
        assert_eq!(stale.status(), StatusCode::OK, "another tag gets the map");
    }

    #[tokio::test]
    async fn gzip_is_sent_only_to_clients_that_accept_it() {
        let bodies = SeatMapBodies::new(Duration::ZERO);
        let event = EventId::from_uuid(Uuid::now_v7());
        let shared = map(event);
        let json = bodies.body((event, None), &shared).json().clone();
        for accept in ["gzip", "br, gzip;q=0.5", "*", "GZIP"] {
            let answer = bodies.answer(
                (event, None),
                &shared,
                &headers(&[(header::ACCEPT_ENCODING, accept)]),
            );
            assert_eq!(
                answer.headers()[header::CONTENT_ENCODING],
                "gzip",
                "{accept}"
            );
            assert_eq!(answer.headers()[header::CACHE_CONTROL], "no-cache");
            let mut unzipped = Vec::new();
            flate2::read::GzDecoder::new(&body_of(answer).await[..])
                .read_to_end(&mut unzipped)
                .unwrap();
            assert_eq!(unzipped, json, "{accept}");
        }
        for accept in ["identity", "gzip;q=0", "br", "gzip; q=0.0"] {
            let answer = bodies.answer(
                (event, None),
                &shared,
                &headers(&[(header::ACCEPT_ENCODING, accept)]),
            );
            assert!(
                answer.headers().get(header::CONTENT_ENCODING).is_none(),
                "{accept}"
            );
            assert_eq!(body_of(answer).await, json, "{accept}");
        }
    }
}
