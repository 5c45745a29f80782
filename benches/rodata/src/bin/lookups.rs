//! Calls every lookup of the table: number to code, name to code, and every fact of a code,
//! each result through `black_box` (no formatting code beyond the baseline's).

use std::hint::black_box;

use clarifai_status::{Code, StatusCode};

fn main() {
    let n: i32 = black_box(std::env::args().count() as i32);
    let name = black_box(std::env::args().next().unwrap_or_default());
    let code = Code::new(n);
    black_box(StatusCode::from_number(n));
    black_box(StatusCode::from_name(&name));
    black_box(StatusCode::name_is_deprecated(&name));
    black_box(code.known());
    black_box(code.name());
    black_box(code.description());
    black_box(code.outcome());
    black_box(code.is_retryable());
    black_box(code.is_retryable_on_every_method());
    black_box(code.category());
    black_box(code.is_deprecated());
    black_box(code.aliases());
    black_box(code.removed_in());
    black_box(code.grpc_code());
    black_box(code.http_status());
    let known = black_box(StatusCode::ConnKeyInvalid);
    black_box(known.name());
    black_box(known.description());
    black_box(known.aliases());
    black_box(known.removed_in());
    black_box(known.outcome());
    black_box(known.grpc_code());
    black_box(known.http_status());
    black_box(known.is_retryable());
    black_box(known.is_retryable_on_every_method());
    black_box(known.category());
    black_box(known.is_deprecated());
    black_box(StatusCode::all().count());
    println!("{}", black_box(code).number());
}
