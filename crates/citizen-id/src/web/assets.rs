//! Static assets: the vendored NHS.UK frontend (`assets/nhsuk/`, see its README.md),
//! embedded in the binary and served from memory at `/assets/{*path}`.
//!
//! The compiled NHS.UK CSS refers to its images as `url(/assets/images/...)`, so the
//! contents of `assets/nhsuk/` must be served directly under `/assets/`
//! (`assets/nhsuk/images/x.svg` at `/assets/images/x.svg`).
//!
//! Only the names in [`ASSETS`] are served: the path is looked up in a static table,
//! never joined onto a directory, so there is no directory traversal.
//! `scripts/refresh-nhsuk-frontend.sh` re-vendors the files and warns when this table
//! and the vendored files disagree.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The vendored nhsuk-frontend version (e.g. `10.6.1`). Templates append it as
/// `?v=...` to the CSS and JS URLs so that a new version is not hidden by the
/// year-long `immutable` cache.
pub const NHSUK_FRONTEND_VERSION: &str = include_str!("../../assets/nhsuk/VERSION");

/// URL of the stylesheet (without the `?v=` cache buster).
pub const CSS_PATH: &str = "/assets/nhsuk-frontend.min.css";
/// URL of the JavaScript ES module (without the `?v=` cache buster).
pub const JS_PATH: &str = "/assets/nhsuk-frontend.min.js";

/// `Cache-Control` for every asset.
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// One embedded file: its path under `/assets/`, its `Content-Type` and its bytes.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../../assets/nhsuk/", $path)),
        }
    };
}

/// Every file served under `/assets/`.
pub static ASSETS: &[Asset] = &[
    asset!("nhsuk-frontend.min.css", "text/css; charset=utf-8"),
    asset!("nhsuk-frontend.min.js", "text/javascript; charset=utf-8"),
    asset!("manifest.json", "application/manifest+json"),
    asset!("images/favicon.ico", "image/x-icon"),
    asset!("images/favicon.svg", "image/svg+xml"),
    asset!("images/nhsuk-icon-mask.svg", "image/svg+xml"),
    asset!("images/nhsuk-icon-180.png", "image/png"),
    asset!("images/nhsuk-icon-192.png", "image/png"),
    asset!("images/nhsuk-icon-512.png", "image/png"),
    // Referenced by the CSS as url(/assets/images/...).
    asset!("images/nhsuk-icon-arrow-down.svg", "image/svg+xml"),
    asset!("images/nhsuk-icon-arrow-up.svg", "image/svg+xml"),
    asset!("images/nhsuk-icon-arrow-up-down.svg", "image/svg+xml"),
    asset!("images/nhsuk-icon-cross.svg", "image/svg+xml"),
    // Our own script: the browser half of the passkey ceremonies (assets/js/passkeys.js).
    Asset {
        path: PASSKEYS_JS,
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/js/passkeys.js"),
    },
];

/// Our passkey script's URL, with `?v=` and the first 16 hex digits of its SHA-256. Unlike the
/// vendored frontend it has no version of its own, it changes with the server, and every asset is
/// cached for a year as `immutable`: without a new URL, a browser would keep running the old
/// script against new ceremony endpoints after an upgrade.
pub fn passkeys_js_url() -> &'static str {
    static URL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let bytes = find(PASSKEYS_JS).expect("passkeys.js is embedded").bytes;
        format!("/assets/{PASSKEYS_JS}?v={}", &content_version(bytes))
    });
    &URL
}

const PASSKEYS_JS: &str = "js/passkeys.js";

/// The cache buster for `bytes`: 16 hex digits of their SHA-256.
fn content_version(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    crate::crypto::hex(&digest.as_ref()[..8])
}

/// The embedded asset at `path` (relative to `/assets/`, no leading slash), if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// Serves `/assets/{*path}` from [`ASSETS`]; 404 for anything else.
pub async fn serve_asset(Path(path): Path<String>) -> Response {
    match find(&path) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL)),
            ],
            asset.bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))],
            "Not found",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passkey_script_url_changes_with_its_content() {
        let url = passkeys_js_url();
        let (path, version) = url.strip_prefix("/assets/").and_then(|u| u.split_once("?v=")).expect("/assets/...?v=...");
        let asset = find(path).expect("the URL names a served asset");
        assert_eq!(version, content_version(asset.bytes));
        assert_eq!(version.len(), 16);
        assert_ne!(content_version(b"console.log(1)"), content_version(b"console.log(2)"));
    }
}
