//! Fault injection: servers SIGKILLed under load, thousands of cancelled
//! subscriptions, slow and stuck consumers, and replicas publishing at random.

mod churn;
mod kill;
mod multi_server;
mod slow;
