//! Back pressure instead of an unbounded queue: a new job is refused with `429` and
//! `Retry-After` while too many jobs wait, in total or for the caller's tenant. The check and
//! the insert are not one transaction, so a burst may pass the limit by a few jobs.

use super::AppState;
use super::error::ApiError;
use crate::auth::Caller;

/// Refuses a new job when the queue is full.
pub async fn admit(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let limits = &state.settings.limits;
    let tenant = state.store.count_waiting(Some(&caller.tenant)).await?;
    if tenant >= limits.max_queued_per_tenant {
        return Err(ApiError::TooBusy(format!(
            "your tenant already has {tenant} jobs waiting (limit {}); try again later",
            limits.max_queued_per_tenant
        )));
    }
    let total = state.store.count_waiting(None).await?;
    if total >= limits.max_queued {
        return Err(ApiError::TooBusy(
            "the service has too many jobs waiting; try again later".into(),
        ));
    }
    Ok(())
}
