//! [`PendingHandshakes`]: the handshakes a listener has in progress, each in its own
//! task, at most a fixed number at once; when full, the oldest makes room.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use tokio::task::{AbortHandle, Id, JoinSet};

/// Handshake tasks in the order they were started. A newcomer never waits: when the
/// bound is reached, the oldest handshake still in progress is aborted (its socket is
/// closed) to make room. Dropping the set aborts every task.
pub(crate) struct PendingHandshakes {
    tasks: JoinSet<()>,
    /// Live tasks by age (oldest first).
    by_age: BTreeMap<u64, AbortHandle>,
    age_of: HashMap<Id, u64>,
    next_age: u64,
    max: usize,
}

impl PendingHandshakes {
    /// An empty set holding at most `max` tasks (at least one).
    pub(crate) fn new(max: usize) -> Self {
        PendingHandshakes {
            tasks: JoinSet::new(),
            by_age: BTreeMap::new(),
            age_of: HashMap::new(),
            next_age: 0,
            max: max.max(1),
        }
    }

    /// How many tasks are still running (after [`reap`](Self::reap)).
    pub(crate) fn len(&self) -> usize {
        self.by_age.len()
    }

    /// Start `handshake` in its own task, first evicting the oldest tasks if the set is
    /// full. Returns how many were evicted.
    pub(crate) fn spawn<F>(&mut self, handshake: F) -> usize
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.reap();
        let mut evicted = 0;
        while self.len() >= self.max && self.evict_oldest().is_some() {
            evicted += 1;
        }
        let handle = self.tasks.spawn(handshake);
        let age = self.next_age;
        self.next_age += 1;
        self.age_of.insert(handle.id(), age);
        self.by_age.insert(age, handle);
        evicted
    }

    /// Forget the tasks that have ended.
    pub(crate) fn reap(&mut self) {
        while let Some(ended) = self.tasks.try_join_next_with_id() {
            self.forget(ended_id(ended));
        }
    }

    /// Wait until some task ends. Never returns when the set is empty.
    pub(crate) async fn next_ended(&mut self) {
        match self.tasks.join_next_with_id().await {
            Some(ended) => self.forget(ended_id(ended)),
            None => std::future::pending().await,
        }
    }

    /// Abort the oldest task still running, if any; returns its id.
    pub(crate) fn evict_oldest(&mut self) -> Option<Id> {
        let (_, handle) = self.by_age.pop_first()?;
        self.age_of.remove(&handle.id());
        handle.abort();
        Some(handle.id())
    }

    /// Abort the oldest task and wait until it is gone (its socket closed), so that its
    /// file descriptor is free again. Returns false when there was none.
    pub(crate) async fn evict_oldest_and_wait(&mut self) -> bool {
        self.reap();
        let Some(evicted) = self.evict_oldest() else {
            return false;
        };
        while let Some(ended) = self.tasks.join_next_with_id().await {
            let id = ended_id(ended);
            self.forget(id);
            if id == evicted {
                break;
            }
        }
        true
    }

    fn forget(&mut self, id: Id) {
        if let Some(age) = self.age_of.remove(&id) {
            self.by_age.remove(&age);
        }
    }
}

fn ended_id(ended: Result<(Id, ()), tokio::task::JoinError>) -> Id {
    match ended {
        Ok((id, ())) => id,
        Err(e) => e.id(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_task_is_evicted_when_full() {
        let mut set = PendingHandshakes::new(2);
        let (tx0, rx0) = tokio::sync::oneshot::channel::<()>();
        let (tx1, rx1) = tokio::sync::oneshot::channel::<()>();
        let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
        // Each task waits forever; its sender sees `closed` once the task is dropped.
        for rx in [rx0, rx1, rx2] {
            let evicted = set.spawn(async move {
                let _keep = rx;
                std::future::pending::<()>().await;
            });
            assert!(evicted <= 1);
        }
        assert_eq!(set.len(), 2);
        let mut tx0 = tx0;
        tx0.closed().await; // the first task was dropped
        assert!(!tx1.is_closed() && !tx2.is_closed());
        assert!(set.evict_oldest_and_wait().await);
        assert!(tx1.is_closed() && !tx2.is_closed());
        assert_eq!(set.len(), 1);
    }

    #[tokio::test]
    async fn ended_tasks_are_forgotten() {
        let mut set = PendingHandshakes::new(4);
        set.spawn(async {});
        set.next_ended().await;
        assert_eq!(set.len(), 0);
        assert!(!set.evict_oldest_and_wait().await);
    }
}
