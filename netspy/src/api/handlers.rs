//! Handlers: each one call into the query layer (data questions through its gate: once the
//! probes are attached, on a query thread, within the query limits).

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::IntoResponse,
    routing::{MethodRouter, get},
};

use super::{error::ApiError, params::Params};
use crate::query::{Programs, Query, Question};

type Answer<T> = Result<Json<T>, ApiError>;

pub async fn health(State(query): State<Query>) -> impl IntoResponse {
    let health = query.health();
    let status = if health.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health))
}

pub async fn programs(State(query): State<Query>) -> Answer<Programs> {
    Ok(Json(query.programs()))
}

/// A data question as a route: GET with the parameters in the query string, POST with them
/// in a JSON body; asked through the query gate; the answer as JSON.
pub fn question<Q: Question>() -> MethodRouter<Query> {
    let handler = |State(query): State<Query>, Params(req): Params<Q::Request>| async move {
        let answer: Answer<Q::Answer> = Ok(Json(query.answer(move |q| Q::answer(q, &req)).await?));
        answer
    };
    get(handler).post(handler)
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; see /docs or /openapi.json",
    )
}
