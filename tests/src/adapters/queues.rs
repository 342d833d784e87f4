use std::ops::Deref;

use connector::ports::JobQueue;
use connector_aws::sqs::SqsQueue;
use connector_embedded::queue::{EmbeddedQueue, QueueSettings};
use tempfile::TempDir;

use crate::moto::{moto_config, unique_name};

/// A fresh embedded queue in its own temporary SQLite file, removed when this is dropped.
pub struct TempEmbeddedQueue {
    queue: EmbeddedQueue,
    _dir: TempDir,
}

impl Deref for TempEmbeddedQueue {
    type Target = EmbeddedQueue;

    fn deref(&self) -> &EmbeddedQueue {
        &self.queue
    }
}

pub fn embedded_queue(max_receive_count: u32) -> TempEmbeddedQueue {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let queue = EmbeddedQueue::open(
        dir.path().join("local.sqlite"),
        "jobs",
        QueueSettings { max_receive_count },
    )
    .expect("open the embedded queue");
    TempEmbeddedQueue { queue, _dir: dir }
}

/// A fresh queue and dead-letter queue on this process's moto_server.
pub async fn sqs_queue(max_receive_count: u32) -> SqsQueue {
    let client = aws_sdk_sqs::Client::new(&moto_config().await);
    SqsQueue::create(&client, &unique_name("jobs"), max_receive_count)
        .await
        .expect("create the SQS queues on moto")
}

/// Lets one macro hand either factory's result to a conformance check.
pub trait AsJobQueue {
    fn as_job_queue(&self) -> &dyn JobQueue;
}

impl AsJobQueue for TempEmbeddedQueue {
    fn as_job_queue(&self) -> &dyn JobQueue {
        &self.queue
    }
}

impl AsJobQueue for SqsQueue {
    fn as_job_queue(&self) -> &dyn JobQueue {
        self
    }
}
