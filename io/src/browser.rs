//! Launching the system browser (RFC 8252 section 4: the system browser, never an embedded
//! web view) through the `webbrowser` crate, which starts the browser without a shell, so a
//! `&` in the URL survives on Windows.

/// Opens `url` in the user's default browser. Errors: why it could not (no browser, no
/// display); the caller has already shown the URL, so the user can open it by hand.
pub fn open(url: &url::Url) -> Result<(), String> {
    webbrowser::open(url.as_str()).map_err(|e| e.to_string())
}
