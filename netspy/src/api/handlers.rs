//! Handlers: each one call into the query layer (data questions through its gate: once the
//! probes are attached, on a query thread, within the query limits).

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};

use super::{error::ApiError, params::Params};
use crate::query::{
    Analysis, ConnectionList, ConnectionSummary, DnsList, DropList, DropSummary, EventsAnswer,
    EventsRequest, ListRequest, Programs, Query, SummaryRequest,
};

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

pub async fn events(
    State(query): State<Query>,
    Params(req): Params<EventsRequest>,
) -> Answer<EventsAnswer> {
    Ok(Json(query.answer(move |q| q.events(&req)).await?))
}

pub async fn connection_summary(
    State(query): State<Query>,
    Params(req): Params<SummaryRequest>,
) -> Answer<ConnectionSummary> {
    Ok(Json(
        query.answer(move |q| q.connection_summary(&req)).await?,
    ))
}

pub async fn list_connections(
    State(query): State<Query>,
    Params(req): Params<ListRequest>,
) -> Answer<ConnectionList> {
    Ok(Json(query.answer(move |q| q.list_connections(&req)).await?))
}

pub async fn analyze_patterns(
    State(query): State<Query>,
    Params(req): Params<SummaryRequest>,
) -> Answer<Analysis> {
    Ok(Json(query.answer(move |q| q.analyze_patterns(&req)).await?))
}

pub async fn drop_summary(
    State(query): State<Query>,
    Params(req): Params<SummaryRequest>,
) -> Answer<DropSummary> {
    Ok(Json(query.answer(move |q| q.drop_summary(&req)).await?))
}

pub async fn list_drops(
    State(query): State<Query>,
    Params(req): Params<ListRequest>,
) -> Answer<DropList> {
    Ok(Json(query.answer(move |q| q.list_drops(&req)).await?))
}

pub async fn list_dns(
    State(query): State<Query>,
    Params(req): Params<ListRequest>,
) -> Answer<DnsList> {
    Ok(Json(query.answer(move |q| q.list_dns(&req)).await?))
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; see /docs or /openapi.json",
    )
}
