//! Building and running the application: the metadata store, object storage, the API, the
//! worker pool and the upkeep tasks, and a graceful shutdown of all of them.

use crate::api::{self, AppState};
use crate::auth::Authenticator;
use crate::config::{LOCAL_CONNECTION, Settings, is_duckdb, is_postgres};
use crate::domain::JobKind;
use crate::jobs::Expiry;
use crate::jobs::export::ExportHandler;
use crate::jobs::import::ImportHandler;
use crate::notify::{EmailHandler, Notifier, WebhookHandler};
use crate::queue::executor::ExecutorSettings;
use crate::queue::maintenance::{self, MaintenanceSettings};
use crate::queue::pool::{self, Handlers, PoolSettings};
use crate::queue::retry::RetryPolicy;
use crate::queue::{Signals, Store, listen};
use crate::storage::Storage;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// API and workers (`ferry serve`).
    Serve,
    /// Workers only (`ferry worker`).
    Worker,
}

/// Creates the embedded `local` connection's database file if it does not exist yet, so that
/// its read-only export connections can open it in a fresh data directory.
async fn create_local_database(settings: &Settings) -> anyhow::Result<()> {
    if settings.connections.contains_key(LOCAL_CONNECTION) {
        return Ok(());
    }
    let url = settings.local_connection().url;
    crate::pipeline::sources::sqlite::create_if_missing(url.expose())
        .await
        .with_context(|| {
            format!(
                "cannot create the local connection's database in {}",
                settings.data_dir.display()
            )
        })
}

/// How long the start-up look at a data connection waits.
const CONNECTION_CHECK: Duration = Duration::from_secs(5);

/// Looks at every configured data connection in the background and warns, naming it, about one
/// that does not answer: exports and imports on it would fail, but the others work, so it does
/// not stop the start.
fn warn_about_unreachable_connections(settings: &Settings) {
    for (name, connection) in &settings.connections {
        let name = name.clone();
        let url = connection.url.expose().to_owned();
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(CONNECTION_CHECK, probe_connection(&url)).await;
            let problem = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {CONNECTION_CHECK:?}"),
            };
            tracing::warn!(connection = %name, error = %problem, "data connection {name:?} is not reachable; jobs on it will fail until it is");
        });
    }
}

/// Opens and closes one connection to the database at `url` (a SQLite or DuckDB file
/// read-only, so a missing file is reported rather than created).
async fn probe_connection(url: &str) -> anyhow::Result<()> {
    use sqlx::{ConnectOptions, Connection};
    if is_duckdb(url) {
        Ok(crate::pipeline::sources::duckdb::probe(url).await?)
    } else if is_postgres(url) {
        Ok(sqlx::PgConnection::connect(url).await?.close().await?)
    } else {
        Ok(
            <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(url)?
                .read_only(true)
                .connect()
                .await?
                .close()
                .await?,
        )
    }
}

/// A built application, ready to run.
pub struct Application {
    settings: Arc<Settings>,
    store: Store,
    storage: Storage,
    webhooks: WebhookHandler,
    email: EmailHandler,
    auth: Authenticator,
    listener: Option<TcpListener>,
    wrap_api: Option<WrapApi>,
}

/// A function that wraps the API router, e.g. in extra middleware.
type WrapApi = Box<dyn FnOnce(axum::Router) -> axum::Router + Send>;

impl Application {
    /// Connects to everything and binds the listen address (for `Serve`).
    pub async fn build(mut settings: Settings, role: Role) -> anyhow::Result<Self> {
        // Installed before any work so that no request or job goes uncounted.
        crate::metrics::handle();
        let auth = Authenticator::new(&settings.auth).context("invalid [auth] configuration")?;
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                settings.data_dir.display()
            )
        })?;
        if role == Role::Worker && settings.workers.concurrency == 0 {
            anyhow::bail!(
                "`ferry worker` runs jobs, and workers.concurrency = 0 runs none: set it to 1 or more"
            );
        }
        create_local_database(&settings).await?;
        warn_about_unreachable_connections(&settings);
        let listener = match role {
            Role::Serve => Some(
                TcpListener::bind(settings.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", settings.listen))?,
            ),
            Role::Worker => None,
        };
        // Links Ferry signs point at the address it really listens on (port 0 included).
        if let (None, Some(addr)) = (
            &settings.public_url,
            listener.as_ref().and_then(|l| l.local_addr().ok()),
        ) {
            settings.public_url = Some(format!("http://{addr}"));
        }
        let store = Store::connect(settings.metadata_url().expose(), Signals::default())
            .await
            .context("cannot open the metadata database")?
            .with_follow_ups(Arc::new(Notifier));
        let storage = Storage::from_settings(&settings).context("cannot open the object store")?;
        if let Err(error) = storage.ping().await {
            anyhow::bail!(
                "the object store cannot be used: {}",
                crate::storage::explain(&error, &settings.storage)
            );
        }
        let webhooks = WebhookHandler::new(&settings.webhooks)
            .context("webhooks.secret is not a usable whsec_ secret")?
            .with_timeout(settings.webhooks.timeout);
        let email = EmailHandler::new(settings.email.as_ref(), storage.clone())
            .context("invalid [email] configuration")?;
        Ok(Self {
            settings: Arc::new(settings),
            store,
            storage,
            webhooks,
            email,
            auth,
            listener,
            wrap_api: None,
        })
    }

    /// Wraps the API router before it serves: extra middleware of an embedding program (the
    /// integration tests check every answer against the OpenAPI document this way).
    pub fn wrap_api(
        mut self,
        wrap: impl FnOnce(axum::Router) -> axum::Router + Send + 'static,
    ) -> Self {
        self.wrap_api = Some(Box::new(wrap));
        self
    }

    /// The address the API listens on (useful with port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Runs until `shutdown` fires, then stops taking work and drains within the grace period.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let settings = self.settings.clone();
        let mut tasks = JoinSet::new();
        let upkeep = CancellationToken::new();
        if let Some(url) = settings
            .database_url
            .as_ref()
            .map(|u| u.expose().to_owned())
            .filter(|u| is_postgres(u))
        {
            tasks.spawn(listen::run(
                url,
                self.store.signals().clone(),
                upkeep.clone(),
            ));
        }
        let executor = executor_settings(&settings);
        let maintenance_settings = MaintenanceSettings {
            rescue_interval: (settings.workers.lease / 2).max(Duration::from_millis(200)),
            sweep_interval: settings.workers.sweep_interval,
            record_retention: settings.storage.record_retention,
            abandon_uploads_after: settings.storage.abandon_uploads_after,
            executor: executor.clone(),
        };
        tasks.spawn(maintenance::run(
            self.store.clone(),
            Arc::new(Expiry(self.storage.clone())),
            maintenance_settings,
            upkeep.clone(),
        ));
        let mut handlers: Handlers = Handlers::new();
        handlers.insert(
            JobKind::Export,
            Arc::new(ExportHandler::new(settings.clone(), self.storage.clone())),
        );
        handlers.insert(
            JobKind::Import,
            Arc::new(ImportHandler::new(settings.clone(), self.storage.clone())),
        );
        handlers.insert(JobKind::Webhook, Arc::new(self.webhooks));
        handlers.insert(JobKind::Email, Arc::new(self.email));
        let pool_settings = PoolSettings {
            concurrency: settings.workers.concurrency,
            poll_interval: settings.workers.poll_interval,
            shutdown_grace: settings.workers.shutdown_grace,
            max_running_per_tenant: settings.limits.max_running_per_tenant,
            executor,
        };
        // `workers.concurrency = 0` makes `ferry serve` API-only: no pool at all.
        let workers = (pool_settings.concurrency > 0).then(|| {
            tokio::spawn(pool::run(
                self.store.clone(),
                handlers,
                pool_settings,
                shutdown.clone(),
            ))
        });
        if let Some(listener) = self.listener {
            let state = AppState {
                settings: settings.clone(),
                store: self.store.clone(),
                storage: self.storage.clone(),
                auth: self.auth,
            };
            tracing::info!(address = %listener.local_addr()?, "Ferry is listening");
            let stop = shutdown.clone();
            let mut router = api::router(state);
            if let Some(wrap) = self.wrap_api {
                router = wrap(router);
            }
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .context("the HTTP server failed")?;
        }
        if let Some(workers) = workers {
            workers.await.context("the worker pool panicked")?;
        } else {
            shutdown.cancelled().await;
        }
        upkeep.cancel();
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

fn executor_settings(settings: &Settings) -> ExecutorSettings {
    ExecutorSettings {
        worker: worker_name(),
        lease: settings.workers.lease,
        timeout: settings.workers.job_timeout,
        retry: RetryPolicy {
            base: settings.workers.backoff_base,
            factor: 2,
            cap: settings.workers.backoff_cap,
        },
        retention: settings.storage.retention,
    }
}

/// A name unique to this process, shown as a job's lease owner in logs.
fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "ferry".to_owned());
    let short = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &short[..8])
}

/// Fires `token` on SIGTERM or Ctrl-C.
pub fn stop_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
        tracing::info!("shutting down: no new jobs; running ones get the grace period");
        token.cancel();
    });
}
