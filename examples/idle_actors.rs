//! The memory reference of `scripts/bench-memory.sh`: N bare, idle ractor actors,
//! each with one pending `send_after` timer (what every pushmon monitor actor has),
//! built with the same ractor features as pushmon. Prints the resident memory per
//! actor so pushmon's per-monitor cost can be compared with it in the same run.
//!
//!     cargo run --release --example idle_actors -- 100000

use std::time::{Duration, Instant};

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr};

/// The allocator pushmon uses, so the comparison is like for like.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Idle;

enum IdleMsg {
    Tick,
}

impl Actor for Idle {
    type Msg = IdleMsg;
    type State = JoinHandle<Result<(), MessagingErr<IdleMsg>>>;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (): (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(myself.send_after(Duration::from_secs(3600), || IdleMsg::Tick))
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|text| text.parse())
        .transpose()?
        .unwrap_or(100_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib();
    let started = Instant::now();
    let mut actors = Vec::with_capacity(count);
    for _ in 0..count {
        let (actor, _) = Actor::spawn(None, Idle, ()).await?;
        actors.push(actor);
    }
    let spawn_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib();
    println!(
        "RESULT actors={count} rss_before_kib={before} rss_after_kib={after} bytes_per_actor={:.0} spawn_per_second={:.0}",
        (after.saturating_sub(before) * 1024) as f64 / count as f64,
        count as f64 / spawn_seconds
    );
    for actor in actors {
        actor.stop(None);
    }
    Ok(())
}
