//! `edupulse`: run one of the EduPulse services against a pulsebus server.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use pulsebus_client::{CancellationToken, ClientBuilder};
use pulsebus_services::{achievements, notifications, search, topics, traffic};

#[derive(Parser)]
#[command(about = "The EduPulse services on pulsebus")]
struct Cli {
    /// The pulsebus server.
    #[arg(
        long,
        env = "PULSEBUS_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    server: String,
    /// Bearer token, when the server has --auth-file.
    #[arg(long, env = "PULSEBUS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Index lessons into a tantivy index.
    SearchIndexer {
        #[arg(long, env = "EDUPULSE_INDEX")]
        index: PathBuf,
    },
    /// Query the lesson index; prints one JSON line per hit.
    Search {
        #[arg(long, env = "EDUPULSE_INDEX")]
        index: PathBuf,
        query: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Award badges for good quizzes.
    Achievements {
        #[arg(long, env = "EDUPULSE_DATABASE_URL")]
        database_url: String,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Turn badges and feedback into notifications.
    Notifications {
        #[arg(long, env = "EDUPULSE_DATABASE_URL")]
        database_url: String,
    },
    /// Publish generated traffic.
    Traffic {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 50)]
        students: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let cli = Cli::parse();
    let mut builder = ClientBuilder::new(cli.server);
    if let Some(token) = cli.token {
        builder = builder.token(token);
    }
    let client = builder.connect()?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    match cli.command {
        Command::SearchIndexer { index } => search::run(&client, &index, shutdown).await,
        Command::Search {
            index,
            query,
            limit,
        } => {
            for hit in search::search(&index, &query, limit)? {
                println!("{}", serde_json::to_string(&hit)?);
            }
            Ok(())
        }
        Command::Achievements {
            database_url,
            concurrency,
        } => {
            let db = sqlx::PgPool::connect(&database_url).await?;
            achievements::run(
                &client,
                db,
                achievements::Rules::default(),
                concurrency,
                shutdown,
            )
            .await
        }
        Command::Notifications { database_url } => {
            let db = sqlx::PgPool::connect(&database_url).await?;
            notifications::run(&client, db, Duration::from_secs(5), shutdown).await
        }
        Command::Traffic { seed, students } => {
            let shape = traffic::Shape {
                seed,
                students,
                lessons: students,
                quizzes_per_student: 6,
                feedback: students * 2,
            };
            let (traffic, _) = traffic::generate(shape, achievements::Rules::default());
            client.publish(topics::LESSONS, traffic.lessons).await?;
            client.publish(topics::QUIZZES, traffic.quizzes).await?;
            client.publish(topics::FEEDBACK, traffic.feedback).await?;
            Ok(())
        }
    }
}
