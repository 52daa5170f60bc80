//! `hyper-404`: the P2/P3 peer. A minimal hyper 1.x HTTP/1.1 server on 127.0.0.1 that answers
//! every request with the same 404 page our loopback server sends (same status, headers and
//! body, built once), on a current-thread tokio runtime: one thread, like our server.
//!
//! Prints `listening on 127.0.0.1:PORT` once it accepts connections, then serves until killed.
//! `hyper-404 --multi-thread` uses tokio's multi-thread runtime instead (for reference only).
#![forbid(unsafe_code)]

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use openrouter_auth_core::Page;
use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

fn main() {
    let multi = std::env::args().any(|a| a == "--multi-thread");
    let rt = if multi {
        tokio::runtime::Builder::new_multi_thread()
            .enable_io()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
    }
    .expect("tokio runtime");
    rt.block_on(serve());
}

async fn serve() {
    let page = Page::NotFound.render();
    let mut map = hyper::HeaderMap::new();
    for (n, v) in page.headers.iter() {
        map.append(
            hyper::header::HeaderName::from_bytes(n.as_bytes()).expect("header name"),
            hyper::header::HeaderValue::from_str(v).expect("header value"),
        );
    }
    let headers = Arc::new(map);
    let body = Bytes::from(page.body.to_string());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local addr").port();
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on 127.0.0.1:{port}");
        let _ = out.flush();
    }
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let headers = headers.clone();
        let body = body.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |_req: Request<Incoming>| {
                let mut resp = Response::new(Full::new(body.clone()));
                *resp.status_mut() = StatusCode::NOT_FOUND;
                *resp.headers_mut() = (*headers).clone();
                async move { Ok::<_, Infallible>(resp) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
