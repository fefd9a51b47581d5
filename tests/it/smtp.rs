//! A real SMTP server for email tests: Python's aiosmtpd (installed by
//! `scripts/test.sh`) with its Debugging handler, which prints each message it
//! receives to stdout.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::{Instant, sleep};

/// An SMTP server printing every message it receives, on a port of the kernel's
/// choosing, which it prints first as `LISTENING <port>`.
const SMTP_SERVER: &str = r#"
import asyncio, sys
from aiosmtpd.handlers import Debugging
from aiosmtpd.smtp import SMTP

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Debugging(sys.stdout)), "127.0.0.1", 0)
    print("LISTENING", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

pub struct SmtpSink {
    pub port: u16,
    output: Arc<Mutex<String>>,
    _child: tokio::process::Child,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        // aiosmtpd's SMTP protocol with its Debugging handler (what `python3 -m aiosmtpd
        // -n` runs), on a port the kernel picks and the script prints: choosing a free
        // port first and handing it over races the other tests' listeners.
        let mut child = tokio::process::Command::new("python3")
            .args(["-u", "-c", SMTP_SERVER])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 must be installed (scripts/test.sh installs aiosmtpd)");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|out| Box::new(out) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|err| Box::new(err) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = Arc::clone(&output);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut all = output.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let port = loop {
            let port = output
                .lock()
                .unwrap()
                .lines()
                .find_map(|line| line.strip_prefix("LISTENING "))
                .map(|port| port.trim().parse::<u16>().expect("a port number"));
            if let Some(port) = port {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "aiosmtpd exited ({status}); is it installed? (pip install aiosmtpd; scripts/test.sh does)\n{}",
                    output.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start listening"
            );
            sleep(Duration::from_millis(50)).await;
        };
        SmtpSink {
            port,
            output,
            _child: child,
        }
    }

    /// Waits until the server printed a message containing `needle`; returns all output.
    pub async fn wait_for_message(&self, needle: &str, max_wait: Duration) -> String {
        let deadline = Instant::now() + max_wait;
        loop {
            let output = self.output.lock().unwrap().clone();
            if output.contains(needle) {
                return output;
            }
            assert!(
                Instant::now() < deadline,
                "no message containing {needle:?} within {max_wait:?}; server output:\n{output}"
            );
            sleep(Duration::from_millis(50)).await;
        }
    }
}
