//! Handlers: each one call into the query layer.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};

use super::{error::ApiError, params::Params};
use crate::query::{
    Analysis, ConnectionList, ConnectionSummary, DropList, DropSummary, EventsAnswer,
    EventsRequest, ListRequest, Programs, Query, QueryError, SummaryRequest,
};

type Answer<T> = Result<Json<T>, ApiError>;

/// Data questions are answered once the probes are attached (503 before, as the original).
fn ready(query: &Query) -> Result<(), ApiError> {
    match query.health().ready {
        true => Ok(()),
        false => Err(QueryError::Unavailable(
            "netspy is starting: its probes are not attached yet".into(),
        )
        .into()),
    }
}

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

pub async fn events(
    State(query): State<Query>,
    Params(req): Params<EventsRequest>,
) -> Answer<EventsAnswer> {
    ready(&query)?;
    Ok(Json(query.events(&req)?))
}

pub async fn connection_summary(
    State(query): State<Query>,
    Params(req): Params<SummaryRequest>,
) -> Answer<ConnectionSummary> {
    ready(&query)?;
    Ok(Json(query.connection_summary(&req)?))
}

pub async fn list_connections(
    State(query): State<Query>,
    Params(req): Params<ListRequest>,
) -> Answer<ConnectionList> {
    ready(&query)?;
    Ok(Json(query.list_connections(&req)?))
}

pub async fn analyze_patterns(
    State(query): State<Query>,
    Params(req): Params<SummaryRequest>,
) -> Answer<Analysis> {
    ready(&query)?;
    Ok(Json(query.analyze_patterns(&req)?))
}

pub async fn drop_summary(
    State(query): State<Query>,
    Params(req): Params<SummaryRequest>,
) -> Answer<DropSummary> {
    ready(&query)?;
    Ok(Json(query.drop_summary(&req)?))
}

pub async fn list_drops(
    State(query): State<Query>,
    Params(req): Params<ListRequest>,
) -> Answer<DropList> {
    ready(&query)?;
    Ok(Json(query.list_drops(&req)?))
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; see /docs or /openapi.json",
    )
}
