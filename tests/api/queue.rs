//! The queue store's conformance suite: every behaviour runs against PostgreSQL and SQLite.

use crate::helpers::{fresh_postgres, fresh_sqlite};
use ferry::domain::{EventKind, Job, JobError, JobId, JobKind, JobState, Progress};
use ferry::queue::{
    CancelOutcome, FollowUp, FollowUps, Holder, Inserted, ListQuery, NewJob, Signals, Store,
};
use std::sync::Arc;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(30);

fn new_job(tenant: &str) -> NewJob {
    NewJob {
        id: JobId::new(),
        kind: JobKind::Export,
        tenant: tenant.to_owned(),
        owner: "user-1".to_owned(),
        name: "test".to_owned(),
        spec: serde_json::json!({"source": {"type": "generate"}}),
        share_with: vec![],
        max_attempts: 3,
        timeout: Duration::from_secs(60),
        state: JobState::Queued,
        idempotency: None,
        progress: Progress::default(),
    }
}

async fn created(store: &Store, new: NewJob) -> ferry::domain::Job {
    match store.insert(new).await.unwrap() {
        Inserted::Created(job) => job,
        other => panic!("expected a new job, got {other:?}"),
    }
}

fn transient() -> JobError {
    JobError {
        code: "db_down".into(),
        message: "unreachable".into(),
        transient: true,
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                let store = super::Store::connect(&super::fresh_postgres().await, super::Signals::default()).await.unwrap();
                super::$name(store).await;
            })*
        }
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let store = super::Store::connect(&super::fresh_sqlite(), super::Signals::default()).await.unwrap();
                super::$name(store).await;
            })*
        }
    };
}

conformance!(
    claim_takes_the_oldest_ready_job_exactly_once,
    a_lapsed_lease_is_rescued_and_the_old_worker_loses_the_job,
    a_transient_failure_requeues_until_attempts_are_used_up,
    cancelling_a_queued_job_is_immediate_and_a_running_one_is_requested,
    an_idempotency_key_returns_the_first_job_or_refuses_another_body,
    every_change_is_an_event_and_final_states_end_with_done,
    a_failed_job_can_be_retried_with_fresh_attempts,
    succeeded_jobs_expire_and_old_records_are_purged,
    a_busy_tenant_does_not_block_another_tenant,
    listing_pages_newest_first_and_hides_other_owners,
    shutdown_hand_back_does_not_count_the_attempt,
    job_counts_group_by_kind_and_state_and_age_only_due_queued_jobs,
    a_final_state_queues_what_the_hook_asks_for_in_the_same_transaction,
    a_change_whose_guard_no_longer_holds_queues_no_follow_up,
    a_follow_up_that_cannot_be_stored_rolls_the_state_change_back,
);

async fn claim_takes_the_oldest_ready_job_exactly_once(store: Store) {
    let first = created(&store, new_job("t")).await;
    let second = created(&store, new_job("t")).await;
    let a = store.claim("w1", LEASE, 10).await.unwrap().unwrap();
    let b = store.claim("w2", LEASE, 10).await.unwrap().unwrap();
    assert_eq!((a.id, b.id), (first.id, second.id));
    assert_eq!((a.state, a.attempt), (JobState::Running, 1));
    assert!(store.claim("w3", LEASE, 10).await.unwrap().is_none());
}

async fn a_lapsed_lease_is_rescued_and_the_old_worker_loses_the_job(store: Store) {
    let job = created(&store, new_job("t")).await;
    store
        .claim("w1", Duration::from_millis(1), 10)
        .await
        .unwrap()
        .unwrap();
    store.clock().advance(Duration::from_millis(20));
    let lapsed = store.lapsed().await.unwrap();
    assert_eq!(lapsed.len(), 1);
    let rescued = store
        .fail(
            job.id,
            &Holder::Lapsed,
            &transient(),
            Some(time::OffsetDateTime::now_utc()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rescued.state, JobState::Queued);
    assert!(
        store
            .heartbeat(job.id, "w1", LEASE, None)
            .await
            .unwrap()
            .is_none(),
        "the old worker's heartbeat must fail"
    );
    let again = store.claim("w2", LEASE, 10).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempt), (job.id, 2));
    assert!(
        store
            .succeed(
                job.id,
                "w1",
                &Progress::default(),
                &serde_json::json!({}),
                LEASE
            )
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_transient_failure_requeues_until_attempts_are_used_up(store: Store) {
    let mut new = new_job("t");
    new.max_attempts = 2;
    let job = created(&store, new).await;
    store.claim("w", LEASE, 10).await.unwrap().unwrap();
    let later = time::OffsetDateTime::now_utc() + Duration::from_millis(300);
    let queued = store
        .fail(
            job.id,
            &Holder::Worker("w".into()),
            &transient(),
            Some(later),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queued.state, JobState::Queued);
    assert!(
        store.claim("w", LEASE, 10).await.unwrap().is_none(),
        "backoff must delay the retry"
    );
    let failed_now = store
        .fail(job.id, &Holder::Worker("w".into()), &transient(), None)
        .await
        .unwrap();
    assert!(failed_now.is_none(), "only a running job can fail");
    store.clock().advance(Duration::from_millis(350));
    assert_eq!(
        store.claim("w", LEASE, 10).await.unwrap().unwrap().attempt,
        2
    );
    let failed = store
        .fail(job.id, &Holder::Worker("w".into()), &transient(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.error.unwrap().code, "db_down");
}

async fn cancelling_a_queued_job_is_immediate_and_a_running_one_is_requested(store: Store) {
    let queued = created(&store, new_job("t")).await;
    assert!(
        matches!(store.cancel(queued.id).await.unwrap(), CancelOutcome::Cancelled(j) if j.state == JobState::Cancelled)
    );
    assert!(matches!(
        store.cancel(queued.id).await.unwrap(),
        CancelOutcome::AlreadyFinal(_)
    ));
    let running = created(&store, new_job("t")).await;
    store.claim("w", LEASE, 10).await.unwrap().unwrap();
    assert!(matches!(
        store.cancel(running.id).await.unwrap(),
        CancelOutcome::Requested(_)
    ));
    let seen = store
        .heartbeat(running.id, "w", LEASE, None)
        .await
        .unwrap()
        .unwrap();
    assert!(seen.cancel_requested);
    let done = store
        .finish_cancelled(running.id, "w")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, JobState::Cancelled);
    assert!(matches!(
        store.cancel(JobId::new()).await.unwrap(),
        CancelOutcome::NotFound
    ));
}

async fn an_idempotency_key_returns_the_first_job_or_refuses_another_body(store: Store) {
    let mut first = new_job("t");
    first.idempotency = Some(("key-1".into(), "hash-a".into()));
    let job = created(&store, first.clone()).await;
    let mut again = new_job("t");
    again.idempotency = Some(("key-1".into(), "hash-a".into()));
    assert!(matches!(store.insert(again).await.unwrap(), Inserted::Existing(j) if j.id == job.id));
    let mut other_body = new_job("t");
    other_body.idempotency = Some(("key-1".into(), "hash-b".into()));
    assert!(matches!(
        store.insert(other_body).await.unwrap(),
        Inserted::KeyReused
    ));
    let mut other_tenant = new_job("u");
    other_tenant.idempotency = Some(("key-1".into(), "hash-b".into()));
    assert!(matches!(
        store.insert(other_tenant).await.unwrap(),
        Inserted::Created(_)
    ));
}

async fn every_change_is_an_event_and_final_states_end_with_done(store: Store) {
    let job = created(&store, new_job("t")).await;
    store.claim("w", LEASE, 10).await.unwrap().unwrap();
    let progress = Progress {
        rows: 5,
        bytes: 50,
        ..Progress::default()
    };
    store
        .heartbeat(job.id, "w", LEASE, Some(&progress))
        .await
        .unwrap()
        .unwrap();
    store
        .heartbeat(job.id, "w", LEASE, None)
        .await
        .unwrap()
        .unwrap();
    store
        .succeed(
            job.id,
            "w",
            &progress,
            &serde_json::json!({"ok": true}),
            LEASE,
        )
        .await
        .unwrap()
        .unwrap();
    let events = store.events_since(job.id, 0).await.unwrap();
    let seen: Vec<(u64, EventKind, JobState)> = events
        .iter()
        .map(|e| (e.seq, e.kind, e.job.state))
        .collect();
    assert_eq!(
        seen,
        [
            (1, EventKind::State, JobState::Queued),
            (2, EventKind::State, JobState::Running),
            (3, EventKind::Progress, JobState::Running),
            (4, EventKind::State, JobState::Succeeded),
            (5, EventKind::Done, JobState::Succeeded),
        ]
    );
    assert_eq!(events[2].job.progress.rows, 5);
    assert_eq!(store.events_since(job.id, 3).await.unwrap().len(), 2);
}

async fn a_failed_job_can_be_retried_with_fresh_attempts(store: Store) {
    let job = created(&store, new_job("t")).await;
    assert!(
        store.retry(job.id).await.unwrap().is_none(),
        "a queued job cannot be retried"
    );
    store.claim("w", LEASE, 10).await.unwrap().unwrap();
    let fatal = JobError {
        code: "query_failed".into(),
        message: "syntax".into(),
        transient: false,
    };
    store
        .fail(job.id, &Holder::Worker("w".into()), &fatal, None)
        .await
        .unwrap()
        .unwrap();
    let retried = store.retry(job.id).await.unwrap().unwrap();
    assert_eq!(
        (retried.state, retried.attempt, retried.error),
        (JobState::Queued, 0, None)
    );
}

async fn succeeded_jobs_expire_and_old_records_are_purged(store: Store) {
    let job = created(&store, new_job("t")).await;
    store.claim("w", LEASE, 10).await.unwrap().unwrap();
    store
        .succeed(
            job.id,
            "w",
            &Progress::default(),
            &serde_json::json!({}),
            Duration::ZERO,
        )
        .await
        .unwrap()
        .unwrap();
    store.clock().advance(Duration::from_millis(5));
    let expiring = store.expiring(10).await.unwrap();
    assert_eq!(expiring.iter().map(|j| j.id).collect::<Vec<_>>(), [job.id]);
    let expired = store.mark_expired(job.id).await.unwrap().unwrap();
    assert_eq!(expired.state, JobState::Expired);
    assert_eq!(
        store
            .purge(time::OffsetDateTime::now_utc() - Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge(time::OffsetDateTime::now_utc() + Duration::from_secs(1))
            .await
            .unwrap(),
        1
    );
    assert!(store.get(job.id).await.unwrap().is_none());
    assert!(store.events_since(job.id, 0).await.unwrap().is_empty());
}

async fn a_busy_tenant_does_not_block_another_tenant(store: Store) {
    for _ in 0..3 {
        created(&store, new_job("busy")).await;
    }
    let other = created(&store, new_job("quiet")).await;
    let first = store.claim("w", LEASE, 1).await.unwrap().unwrap();
    assert_eq!(first.tenant, "busy");
    let second = store.claim("w", LEASE, 1).await.unwrap().unwrap();
    assert_eq!(
        second.id, other.id,
        "the other tenant's job must start while the busy one is at its limit"
    );
    assert!(store.claim("w", LEASE, 1).await.unwrap().is_none());
}

async fn listing_pages_newest_first_and_hides_other_owners(store: Store) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut new = new_job("t");
        if i == 2 {
            new.owner = "someone-else".into();
        }
        if i == 3 {
            new.owner = "someone-else".into();
            new.share_with = vec!["user-1".into()];
        }
        ids.push(created(&store, new).await.id);
    }
    let mut query = ListQuery {
        tenant: "t".into(),
        kind: JobKind::Export,
        visible_to: Some("user-1".into()),
        state: None,
        limit: 2,
        before: None,
    };
    let page1 = store.list(&query).await.unwrap();
    assert_eq!(
        page1.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    query.before = Some(ids[3]);
    let page2 = store.list(&query).await.unwrap();
    assert_eq!(
        page2.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[1], ids[0]],
        "the other owner's unshared job is hidden"
    );
    query.visible_to = None;
    query.limit = 10;
    assert_eq!(
        store.list(&query).await.unwrap().len(),
        3,
        "an admin sees every older job"
    );
    query.tenant = "other".into();
    assert!(store.list(&query).await.unwrap().is_empty());
}

async fn shutdown_hand_back_does_not_count_the_attempt(store: Store) {
    let job = created(&store, new_job("t")).await;
    store.claim("w", LEASE, 10).await.unwrap().unwrap();
    let back = store.release(job.id, "w").await.unwrap().unwrap();
    assert_eq!((back.state, back.attempt), (JobState::Queued, 0));
    assert_eq!(
        store.claim("w2", LEASE, 10).await.unwrap().unwrap().attempt,
        1
    );
}

#[tokio::test]
async fn concurrent_claims_on_postgres_take_each_job_exactly_once() {
    let url = fresh_postgres().await;
    let store = Store::connect(&url, Signals::default()).await.unwrap();
    for _ in 0..40 {
        created(&store, new_job("t")).await;
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = Store::connect(&url, Signals::default()).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = store.claim(&format!("w{w}"), LEASE, 100).await.unwrap() {
                mine.push(job.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (40, 40));
}

/// The metrics' one grouped read: counts by kind and state, and the age of the oldest queued
/// job that is due (a job waiting for its retry's backoff is not).
async fn job_counts_group_by_kind_and_state_and_age_only_due_queued_jobs(store: Store) {
    let first = created(&store, new_job("t")).await;
    let mut upload = new_job("t");
    upload.kind = JobKind::Import;
    upload.state = JobState::AwaitingUpload;
    created(&store, upload).await;
    store.clock().advance(Duration::from_millis(60));
    let counts = store.job_counts().await.unwrap();
    let mut by_state = counts.by_state.clone();
    by_state.sort_by_key(|(kind, state, _)| (kind.as_str(), state.as_str()));
    assert_eq!(
        by_state,
        vec![
            (JobKind::Export, JobState::Queued, 1),
            (JobKind::Import, JobState::AwaitingUpload, 1),
        ]
    );
    assert_eq!(counts.oldest_due.len(), 1, "{counts:?}");
    let (kind, age) = counts.oldest_due[0];
    assert_eq!(kind, JobKind::Export);
    assert!((0.05..60.0).contains(&age), "{age}");

    let claimed = store.claim("w", LEASE, 10).await.unwrap().unwrap();
    assert_eq!(claimed.id, first.id);
    let later = time::OffsetDateTime::now_utc() + Duration::from_secs(3600);
    store
        .fail(
            claimed.id,
            &Holder::Worker("w".into()),
            &transient(),
            Some(later),
        )
        .await
        .unwrap()
        .unwrap();
    let counts = store.job_counts().await.unwrap();
    assert!(
        counts
            .by_state
            .contains(&(JobKind::Export, JobState::Queued, 1)),
        "{counts:?}"
    );
    assert!(counts.oldest_due.is_empty(), "not due yet: {counts:?}");
}

/// A follow-up hook for the tests: one `webhook` job per final state of a client job, whose
/// spec names the job and the state; with `clash`, the follow-up takes the ended job's own id,
/// so that inserting it fails.
struct Echo {
    clash: bool,
}

impl FollowUps for Echo {
    fn follow_ups(&self, job: &Job) -> Vec<FollowUp> {
        if job.kind.is_notification() {
            return Vec::new();
        }
        vec![FollowUp {
            id: if self.clash { job.id } else { JobId::new() },
            kind: JobKind::Webhook,
            name: format!("after {}", job.id),
            spec: serde_json::json!({"after": job.id, "state": job.state}),
            max_attempts: 4,
            timeout: Duration::from_secs(60),
        }]
    }
}

/// The tenant's notification jobs, newest first.
async fn follow_ups(store: &Store, tenant: &str) -> Vec<Job> {
    let query = ListQuery {
        tenant: tenant.into(),
        kind: JobKind::Webhook,
        visible_to: None,
        state: None,
        limit: 100,
        before: None,
    };
    store.list(&query).await.unwrap()
}

async fn a_final_state_queues_what_the_hook_asks_for_in_the_same_transaction(store: Store) {
    let store = store.with_follow_ups(Arc::new(Echo { clash: false }));
    let job = created(&store, new_job("t")).await;
    store.claim("w", LEASE, 10).await.unwrap().unwrap();
    assert!(
        follow_ups(&store, "t").await.is_empty(),
        "running is not final"
    );
    let done = store
        .succeed(
            job.id,
            "w",
            &Progress::default(),
            &serde_json::json!({}),
            LEASE,
        )
        .await
        .unwrap()
        .unwrap();
    let queued = follow_ups(&store, "t").await;
    assert_eq!(queued.len(), 1);
    let follow_up = &queued[0];
    assert_eq!(
        (follow_up.state, follow_up.owner.as_str(), follow_up.attempt),
        (JobState::Queued, "user-1", 0)
    );
    assert_eq!(follow_up.spec["after"], job.id.to_string());
    assert_eq!(follow_up.spec["state"], "succeeded");
    assert_eq!(follow_up.max_attempts, 4);
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(
        store.count_waiting(Some("t")).await.unwrap(),
        0,
        "notifications are not waiting client work"
    );
    // A tenant at its running limit (here 0) still gets its notifications delivered.
    let claimed = store.claim("w", LEASE, 0).await.unwrap().unwrap();
    assert_eq!(claimed.id, follow_up.id);
    store
        .succeed(
            claimed.id,
            "w",
            &Progress::default(),
            &serde_json::json!({}),
            LEASE,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        follow_ups(&store, "t").await.len(),
        1,
        "the hook decides that a notification's end asks for nothing"
    );
}

async fn a_change_whose_guard_no_longer_holds_queues_no_follow_up(store: Store) {
    let store = store.with_follow_ups(Arc::new(Echo { clash: false }));
    let job = created(&store, new_job("t")).await;
    store.claim("w", LEASE, 10).await.unwrap().unwrap();
    let stolen = store
        .succeed(
            job.id,
            "not-the-holder",
            &Progress::default(),
            &serde_json::json!({}),
            LEASE,
        )
        .await
        .unwrap();
    assert!(stolen.is_none());
    assert!(follow_ups(&store, "t").await.is_empty());
    let cancelled = store.cancel(job.id).await.unwrap();
    assert!(
        matches!(cancelled, CancelOutcome::Requested(_)),
        "{cancelled:?}"
    );
    assert!(
        follow_ups(&store, "t").await.is_empty(),
        "a cancel request is no final state"
    );
    store.finish_cancelled(job.id, "w").await.unwrap().unwrap();
    let queued = follow_ups(&store, "t").await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].spec["state"], "cancelled");
}

async fn a_follow_up_that_cannot_be_stored_rolls_the_state_change_back(store: Store) {
    let store = store.with_follow_ups(Arc::new(Echo { clash: true }));
    let job = created(&store, new_job("t")).await;
    let running = store.claim("w", LEASE, 10).await.unwrap().unwrap();
    let outcome = store
        .succeed(
            job.id,
            "w",
            &Progress::default(),
            &serde_json::json!({"rows": 1}),
            LEASE,
        )
        .await;
    assert!(
        outcome.is_err(),
        "the follow-up's insert must fail: {outcome:?}"
    );
    let after = store.get(job.id).await.unwrap().unwrap();
    assert_eq!((after.state, after.result), (JobState::Running, None));
    assert_eq!(
        after.event_seq, running.event_seq,
        "no event of the change remains"
    );
    let events = store.events_since(job.id, 0).await.unwrap();
    assert!(
        events.iter().all(|e| e.kind != EventKind::Done),
        "no `done` for a change that rolled back"
    );
    assert!(follow_ups(&store, "t").await.is_empty());
}
