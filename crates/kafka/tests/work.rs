//! The work transport against a real broker (`CASCADE_KAFKA_BROKERS`): a job's tasks come back one
//! result each, in job order, a task that panics is a failed result instead of a dead worker, and
//! a second coordinator of the same job publishes nothing and finds every result.

#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing
mod common {
    pub mod broker;
    pub mod client;
}

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cascade_kafka::work::{
    DistributeOptions, Outcome, ServeOptions, WorkItem, distribute, results_topic, serve,
};
use common::broker::{brokers, topic};
use common::client::client;

#[test]
fn every_task_gets_one_result_and_a_panic_is_a_failure() {
    let Some(brokers) = brokers("every_task_gets_one_result_and_a_panic_is_a_failure") else {
        return;
    };
    let client = client(&brokers);
    let work_topic = topic("work");
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let client = client.clone();
        let options = ServeOptions {
            work_topic: work_topic.clone(),
            partitions: 3,
            group: work_topic.clone(),
            worker: "squarer".to_owned(),
            stop: Some(Arc::clone(&stop)),
        };
        std::thread::spawn(move || {
            serve::<u64, u64>(
                &client,
                &options,
                &mut |item: &WorkItem<u64>| {
                    assert_ne!(item.task, 7, "seven is refused loudly");
                    Ok(item.task * item.task)
                },
                &mut |_| {},
            )
        })
    };
    let tasks: Vec<(String, u64)> = (0..10).map(|n| (format!("job/{n}"), n)).collect();
    let options = DistributeOptions {
        work_topic: work_topic.clone(),
        results_topic: results_topic(&work_topic),
        partitions: 3,
        job: work_topic.clone(),
        stop: None,
    };
    let done = distribute::<u64, u64>(&client, &options, &tasks, &mut |_| {}).unwrap();
    assert_eq!((done.published, done.resumed, done.round), (10, 0, 0));
    for (n, collected) in done.tasks.iter().enumerate() {
        assert_eq!(collected.worker, "squarer");
        match &collected.outcome {
            Outcome::Done(square) => assert_eq!(*square, (n * n) as u64),
            Outcome::Failed(reason) => {
                assert_eq!(n, 7);
                assert!(
                    reason.contains("panicked") && reason.contains("seven is refused loudly"),
                    "{reason}"
                );
            }
        }
    }
    // The same job again: nothing published, nine results found; the failed task goes out again
    // as round 1 and fails again.
    let again = distribute::<u64, u64>(&client, &options, &tasks, &mut |_| {}).unwrap();
    assert_eq!((again.published, again.resumed, again.round), (1, 9, 1));
    assert!(matches!(again.tasks[7].outcome, Outcome::Failed(_)));
    assert_eq!(again.tasks[3].outcome, Outcome::Done(9));
    stop.store(true, Ordering::Relaxed);
    let report = worker.join().unwrap().unwrap();
    assert_eq!((report.done, report.failed), (9, 2));
}
