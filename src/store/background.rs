//! Background work runs at a lower CPU priority than serving: fjall's flush and
//! compaction threads, and each history sweep on a thread of its own.
//!
//! That work can wait; a push's acknowledgement cannot. On a small machine a
//! compaction that keeps a core busy for tens of milliseconds otherwise takes turns
//! with the async worker and the store's writer, and every push in flight waits a
//! scheduler slice: with 8 connections after a heavy run, p99 went from 8.8–13.8 ms
//! (median 9.7) to 6.3–9.6 ms (median 8.0) with fjall's threads at nice +10
//! (BENCHMARKS.md, session 4). Under contention a nice +10 thread still gets about a
//! tenth of a nice 0 thread's share, and fjall stalls writers itself when flushing
//! falls behind, so the work is never starved for good.
//!
//! fjall names its threads but offers no hook to run code in them, so they are found
//! by name under `/proc/self/task` right after the database is opened. Anything that
//! fails here (no `/proc`, a thread that just exited) only leaves a thread at its
//! priority; it is logged at debug level and never fails the store.

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{Pid, getpriority_process, setpriority_process};

/// What fjall calls its flush and compaction threads.
const FJALL_WORKER: &str = "fjall:worker";

/// How much nicer than the thread that opens the store they run.
pub const NICENESS: i32 = 10;

/// The highest niceness Linux allows.
const MAX_NICE: i32 = 19;

/// The niceness of background work started by a thread of niceness `own`.
fn background_niceness(own: i32) -> i32 {
    (own + NICENESS).min(MAX_NICE)
}

/// How many flush and compaction threads a database gets: fjall's own default, set
/// explicitly so [`lower_fjall_threads`] knows how many to wait for.
pub fn fjall_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(4)
}

/// How long [`lower_fjall_threads`] waits for a new thread to take its name: a
/// spawned thread names itself once it runs.
const NAMING_WAIT: Duration = Duration::from_millis(200);

/// Lowers the `expected` fjall background threads a database just started to
/// `NICENESS` above the calling thread, waiting briefly for them to take their names.
/// Idempotent: a thread already that nice (a database opened before) is left alone.
/// Returns how many threads were lowered.
pub fn lower_fjall_threads(expected: usize) -> usize {
    let Ok(own) = getpriority_process(None) else {
        return 0;
    };
    let target = background_niceness(own);
    let deadline = Instant::now() + NAMING_WAIT;
    let mut lowered = 0;
    loop {
        lowered += lower_named(target);
        if lowered >= expected || Instant::now() >= deadline {
            if lowered < expected {
                tracing::debug!(
                    lowered,
                    expected,
                    "not every fjall thread was found to lower its priority"
                );
            }
            return lowered;
        }
        // Opening a store is synchronous (start-up, or the writer's own thread on
        // recovery); this waits at most NAMING_WAIT, once per open.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One pass over this process's threads: lowers each fjall thread below `target`.
fn lower_named(target: i32) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut lowered = 0;
    for task in tasks.flatten() {
        if !is_fjall_worker(&task.path()) {
            continue;
        }
        let Some(tid) = thread_id(&task.path()) else {
            continue;
        };
        match getpriority_process(Some(tid)) {
            Ok(current) if current >= target => {}
            Ok(_) => match setpriority_process(Some(tid), target) {
                Ok(()) => lowered += 1,
                Err(error) => tracing::debug!(%error, "cannot lower a fjall thread's priority"),
            },
            Err(error) => tracing::debug!(%error, "cannot read a fjall thread's priority"),
        }
    }
    lowered
}

/// Runs `work` on a new thread named `name` at `NICENESS` above the calling thread,
/// for bulk work that must not hold up acknowledgements (a history sweep reads every
/// monitor's history). A thread of its own, because a thread's niceness cannot be
/// lowered back without privileges: a pooled thread would stay nice for the next job.
pub fn spawn_nice<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    let own = getpriority_process(None).unwrap_or(0);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            // The calling thread only (Linux: PRIO_PROCESS with 0 is this thread).
            if let Err(error) = setpriority_process(None, background_niceness(own)) {
                tracing::debug!(%error, "cannot lower a background thread's priority");
            }
            work()
        })
}

fn thread_id(task: &Path) -> Option<Pid> {
    let raw = task.file_name()?.to_str()?.parse::<i32>().ok()?;
    Pid::from_raw(raw)
}

fn is_fjall_worker(task: &Path) -> bool {
    std::fs::read_to_string(task.join("comm")).is_ok_and(|name| name.trim_end() == FJALL_WORKER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nice_thread_runs_at_the_lower_priority_and_its_caller_keeps_its_own() {
        let own = getpriority_process(None).expect("own priority");
        let inside = spawn_nice("test-nice", || getpriority_process(None))
            .expect("spawn")
            .join()
            .expect("join")
            .expect("priority inside");
        assert_eq!(inside, background_niceness(own));
        assert_eq!(getpriority_process(None).expect("own priority"), own);
    }
}
