//! [`Task`]: the unit the scheduler frames and orders — 1 to 4 transactions with one access set.
//!
//! Per-sender order is carried by the task itself: every transaction's sender is given as a
//! [`SenderId`], the key prefix of the sender's account, and [`Task::new`] adds each sender key to
//! the read-write set. Two tasks of one sender therefore always truly conflict, so they never share
//! a frame and the later one always depends on the earlier one (ARCHITECTURE §3.3). The nonce order
//! of a sender's transactions is their order of arrival.

use thiserror::Error;

use crate::access_set::{AccessSet, KeyPrefix};

/// The most transactions one task may hold.
pub const MAX_TRANSACTIONS_PER_TASK: usize = 4;

/// A transaction's sender: the key prefix of the sender's account key (the engine derives it the
/// same way as every other key prefix). It is written by every transaction of that sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SenderId(pub KeyPrefix);

/// A task given to [`Task::new`] was malformed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TaskError {
    /// A task must hold at least one transaction.
    #[error("a task must hold at least one transaction, got none")]
    NoTransactions,
    /// A task may hold at most [`MAX_TRANSACTIONS_PER_TASK`] transactions.
    #[error("a task holds at most {maximum} transactions, got {count}")]
    TooManyTransactions {
        /// Transactions given.
        count: usize,
        /// The limit, [`MAX_TRANSACTIONS_PER_TASK`].
        maximum: usize,
    },
}

/// One task: 1 to [`MAX_TRANSACTIONS_PER_TASK`] transactions executed one after the other by one
/// worker, with their combined predicted access set.
///
/// ```
/// use zero_scheduler::{AccessSet, SenderId, Task};
///
/// let sender = SenderId([7; 10]);
/// let task = Task::new(&[sender], AccessSet::new([[1; 10]], [[2; 10]]))?;
/// assert_eq!(task.transaction_count(), 1);
/// assert!(task.access_set().writes(&sender.0));
/// # Ok::<(), zero_scheduler::TaskError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Task {
    senders: [SenderId; MAX_TRANSACTIONS_PER_TASK],
    transaction_count: u8,
    access_set: AccessSet,
}

impl Task {
    /// Builds a task from the senders of its transactions, in execution order, and its predicted
    /// access set. Each sender's key is added to the read-write set.
    pub fn new(senders: &[SenderId], mut access_set: AccessSet) -> Result<Self, TaskError> {
        if senders.is_empty() {
            return Err(TaskError::NoTransactions);
        }
        if senders.len() > MAX_TRANSACTIONS_PER_TASK {
            return Err(TaskError::TooManyTransactions {
                count: senders.len(),
                maximum: MAX_TRANSACTIONS_PER_TASK,
            });
        }
        let mut stored = [SenderId::default(); MAX_TRANSACTIONS_PER_TASK];
        stored[..senders.len()].copy_from_slice(senders);
        for sender in senders {
            access_set.insert_read_write(sender.0);
        }
        Ok(Self { senders: stored, transaction_count: senders.len() as u8, access_set })
    }

    /// Builds a one-transaction task.
    pub fn single(sender: SenderId, access_set: AccessSet) -> Self {
        let mut access_set = access_set;
        access_set.insert_read_write(sender.0);
        let mut senders = [SenderId::default(); MAX_TRANSACTIONS_PER_TASK];
        senders[0] = sender;
        Self { senders, transaction_count: 1, access_set }
    }

    /// The senders of the task's transactions, in execution order (repeats allowed).
    pub fn senders(&self) -> &[SenderId] {
        &self.senders[..usize::from(self.transaction_count)]
    }

    /// Number of transactions in the task, 1 to [`MAX_TRANSACTIONS_PER_TASK`].
    pub fn transaction_count(&self) -> usize {
        usize::from(self.transaction_count)
    }

    /// The predicted access set, sender keys included.
    pub fn access_set(&self) -> &AccessSet {
        &self.access_set
    }

    /// Exact conflict test between two tasks' access sets.
    pub fn conflicts_with(&self, other: &Task) -> bool {
        self.access_set.conflicts_with(&other.access_set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_and_oversized_tasks() {
        assert_eq!(Task::new(&[], AccessSet::default()), Err(TaskError::NoTransactions));
        let senders = [SenderId([1; 10]); 5];
        assert_eq!(
            Task::new(&senders, AccessSet::default()),
            Err(TaskError::TooManyTransactions { count: 5, maximum: 4 })
        );
        let message = Task::new(&senders, AccessSet::default()).unwrap_err().to_string();
        assert_eq!(message, "a task holds at most 4 transactions, got 5");
    }

    #[test]
    fn senders_become_read_write_keys() {
        let first = SenderId([1; 10]);
        let second = SenderId([2; 10]);
        let task = Task::new(&[first, second, first], AccessSet::new([[1; 10]], [])).unwrap();
        assert_eq!(task.senders(), &[first, second, first]);
        assert_eq!(task.transaction_count(), 3);
        assert!(task.access_set().read_only().is_empty());
        assert_eq!(task.access_set().read_write(), &[[1; 10], [2; 10]]);
        assert_eq!(Task::single(first, AccessSet::default()).access_set().read_write(), &[[1; 10]]);
    }

    #[test]
    fn tasks_of_one_sender_always_conflict() {
        let sender = SenderId([9; 10]);
        let first = Task::single(sender, AccessSet::new([[1; 10]], []));
        let second = Task::single(sender, AccessSet::new([[2; 10]], []));
        assert!(first.conflicts_with(&second));
    }
}
