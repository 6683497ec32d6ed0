//! The console's files, embedded at build time: nothing is fetched at run time and
//! there is no file to deploy beside the binary.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// `(name, content type, bytes)` of each asset under `/console/assets/`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../../console/app.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../../console/icon.svg"),
    ),
];

const INDEX: &str = include_str!("../../../console/index.html");

pub(super) async fn to_index() -> Redirect {
    Redirect::permanent("/console/")
}

pub(super) async fn index() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        INDEX,
    )
        .into_response()
}

pub(super) async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                // The page loads them by a fixed name: revalidate, so an upgraded
                // server never runs with a cached older script.
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            *body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("the console has no file '{file}'"),
        )
            .into_response(),
    }
}
