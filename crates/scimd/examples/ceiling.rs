//! The throughput ceiling `scripts/bench.sh` compares scimd against: a bare
//! actix-web server answering `200 ok` to every request, with the same
//! actix-web build and the same worker count (one per core) as `scimd serve`.
//! Whatever scimd loses relative to this is its own handler, auth and store.
//!
//! Usage: `cargo run --release --example ceiling -p scimd -- 127.0.0.1:18090`

use actix_web::{web, App, HttpResponse, HttpServer};

/// Address used when none is given on the command line.
const DEFAULT_BIND: &str = "127.0.0.1:18090";

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_BIND.to_string());
    HttpServer::new(|| {
        App::new().default_service(web::to(|| async { HttpResponse::Ok().body("ok") }))
    })
    .bind(bind)?
    .run()
    .await
}
