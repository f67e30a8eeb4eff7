//! Stopping a long-running stream command cleanly on Ctrl-C.
//!
//! `--follow` consumers and paced publishers run until interrupted; an interrupt must let them
//! finish what they are doing (persist the sink, commit offsets, commit the open transaction)
//! instead of killing the process mid-write. This module only raises a flag; it never exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag that becomes `true` at the first Ctrl-C (SIGINT). Once this is called, Ctrl-C no longer
/// terminates the process: callers must poll the flag (the consumer and publisher do, between
/// records).
pub fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        if runtime.block_on(tokio::signal::ctrl_c()).is_ok() {
            flag.store(true, Ordering::SeqCst);
        }
    });
    stop
}
