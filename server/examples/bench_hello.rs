//! The benchmark's ceiling: a bare axum endpoint on the same runtime and axum version as the server.
use axum::{routing::get, Router};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3901".into());
    let app = Router::new().route("/hello", get(|| async { "hello" }));
    axum::serve(tokio::net::TcpListener::bind(addr).await?, app).await
}
