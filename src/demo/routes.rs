//! The demo API's routes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Stats;
use super::auth::{Accounts, RegisterError, SharedAccessControl};

struct City {
    name: String,
    owner: Uuid,
}

struct App {
    accounts: Accounts,
    cities: Mutex<HashMap<Uuid, City>>,
    race: bool,
    access: SharedAccessControl,
    stats: Arc<Stats>,
}

type Shared = State<Arc<App>>;

fn error(status: StatusCode, detail: impl Into<String>) -> Response {
    (status, Json(json!({ "detail": detail.into() }))).into_response()
}

/// A store call: the database round trip every handler awaits.
async fn store_latency() {
    let micros = rand::rng().random_range(500..3000);
    tokio::time::sleep(Duration::from_micros(micros)).await;
}

/// Who the request acts as, after its awaited store call. Correct: the authenticated user,
/// kept in a local. With the race: written to the shared access-control object before the
/// await and read back from it after, when another request may have overwritten it.
async fn acting_user(app: &App, authenticated: Uuid) -> Uuid {
    if app.race {
        app.access.set_current_user(authenticated);
        store_latency().await;
        app.access.current_user().unwrap_or(authenticated)
    } else {
        store_latency().await;
        authenticated
    }
}

#[allow(clippy::result_large_err)] // The error is the response itself; it is sent at once.
fn authenticate(app: &App, headers: &HeaderMap) -> Result<Uuid, Response> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| app.accounts.user_for_token(token))
        .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "Not authenticated"))
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

async fn register(State(app): Shared, body: Result<Json<Credentials>, JsonRejection>) -> Response {
    let Ok(Json(c)) = body else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "body must be JSON {email, password}",
        );
    };
    if !c.email.contains('@') || c.password.is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a valid email and a non-empty password are required",
        );
    }
    store_latency().await;
    match app.accounts.register(&c.email, &c.password) {
        Ok(a) => (
            StatusCode::CREATED,
            Json(json!({ "data": { "id": a.id, "email": a.email } })),
        )
            .into_response(),
        Err(RegisterError::Taken) => error(StatusCode::CONFLICT, "email already registered"),
    }
}

#[derive(Deserialize)]
struct TokenForm {
    username: String,
    password: String,
}

async fn token(State(app): Shared, form: Result<Form<TokenForm>, FormRejection>) -> Response {
    let Ok(Form(f)) = form else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form must have username and password",
        );
    };
    match app.accounts.login(&f.username, &f.password) {
        Some(t) => Json(json!({ "access_token": t, "token_type": "bearer" })).into_response(),
        None => error(StatusCode::UNAUTHORIZED, "Incorrect username or password"),
    }
}

#[derive(Deserialize)]
struct NewCity {
    name: String,
}

async fn create_city(
    State(app): Shared,
    headers: HeaderMap,
    body: Result<Json<NewCity>, JsonRejection>,
) -> Response {
    let user = match authenticate(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(Json(city)) = body else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "body must be JSON {name}");
    };
    let owner = acting_user(&app, user).await;
    let id = Uuid::new_v4();
    app.cities.lock().unwrap().insert(
        id,
        City {
            name: city.name.clone(),
            owner,
        },
    );
    (
        StatusCode::CREATED,
        Json(json!({ "data": { "id": id, "name": city.name } })),
    )
        .into_response()
}

async fn get_city(State(app): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let user = match authenticate(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let acting = acting_user(&app, user).await;
    let found = Uuid::parse_str(&id).ok().and_then(|id| {
        let cities = app.cities.lock().unwrap();
        cities
            .get(&id)
            .filter(|c| c.owner == acting)
            .map(|c| json!({ "data": { "id": id, "name": c.name } }))
    });
    match found {
        Some(body) => Json(body).into_response(),
        None => error(StatusCode::NOT_FOUND, "City not found"),
    }
}

async fn list_cities(State(app): Shared, headers: HeaderMap) -> Response {
    let user = match authenticate(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let acting = acting_user(&app, user).await;
    let cities = app.cities.lock().unwrap();
    let mine: Vec<Value> = cities
        .iter()
        .filter(|(_, c)| c.owner == acting)
        .map(|(id, c)| json!({ "id": id, "name": c.name }))
        .collect();
    Json(json!({ "data": mine })).into_response()
}

async fn stats_route(State(app): Shared) -> Json<Value> {
    let requests = app.stats.snapshot();
    let total: u64 = requests.values().sum();
    Json(json!({ "requests": requests, "total": total }))
}

/// Counts every request except those to `/stats` itself.
async fn count(State(app): Shared, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "(unmatched)".into());
    if route != "/stats" {
        app.stats.count(format!("{} {route}", req.method()));
    }
    next.run(req).await
}

/// The demo API. `stats` receives the per-route request counts.
pub fn router(race: bool, stats: Arc<Stats>) -> Router {
    let app = Arc::new(App {
        accounts: Accounts::default(),
        cities: Mutex::new(HashMap::new()),
        race,
        access: SharedAccessControl::default(),
        stats,
    });
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/token", post(token))
        .route("/cities", post(create_city).get(list_cities))
        .route("/cities/{id}", get(get_city))
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/stats", get(stats_route))
        .layer(middleware::from_fn_with_state(app.clone(), count))
        .with_state(app)
}
