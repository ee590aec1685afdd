//! Deletes what uploads left in `<data_dir>/tmp` when the process died under them.
//!
//! A staged upload deletes its temporary file when it is dropped, but a crash (kill -9, power
//! loss) drops nothing. At start-up nothing is in flight, so everything there is an orphan; while
//! the server runs, a file untouched for `limits.tmp_max_age` is one too, since a live upload
//! writes at least every MiB and a stalled one is cut off after the body timeouts.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

/// Deletes every entry of `dir` last modified at least `max_age` ago (all of them for zero);
/// returns how many went.
pub(crate) fn sweep(dir: &Path, max_age: Duration) -> std::io::Result<usize> {
    let now = SystemTime::now();
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        entries => entries?,
    };
    for entry in entries {
        let entry = entry?;
        let metadata = entry.metadata()?;
        // A modification time in the future (a clock step) counts as just touched.
        let age = metadata.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
        if age < max_age {
            continue;
        }
        let path = entry.path();
        let result =
            if metadata.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        match result {
            Ok(()) => removed += 1,
            // Its upload finished (renamed or dropped it) between listing and removing.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(removed)
}

/// How often the running server sweeps: a quarter of the age, so an orphan outlives it by at
/// most 25 %, but at most every 10 minutes.
pub(crate) fn interval(max_age: Duration) -> Duration {
    (max_age / 4).clamp(Duration::from_millis(100), Duration::from_secs(600))
}

/// Sweeps `dir` by age every [`interval`] until `stop`.
pub(crate) async fn run(dir: PathBuf, max_age: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval(max_age)) => {}
            () = stop.cancelled() => return,
        }
        let swept = dir.clone();
        match tokio::task::spawn_blocking(move || sweep(&swept, max_age)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::info!(removed, dir = %dir.display(), "orphaned upload files deleted"),
            Ok(Err(error)) => {
                tracing::warn!(%error, dir = %dir.display(), "sweeping orphaned upload files failed")
            }
            Err(error) => tracing::warn!(%error, "the upload file sweep panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_entries_go_and_fresh_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(".tmpOLD");
        let fresh = dir.path().join(".tmpNEW");
        std::fs::write(&old, b"x").unwrap();
        std::fs::write(&fresh, b"y").unwrap();
        std::fs::create_dir(dir.path().join(".incoming")).unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&old).unwrap().set_modified(hour_ago).unwrap();
        assert_eq!(sweep(dir.path(), Duration::from_secs(60)).unwrap(), 1);
        assert!(!old.exists() && fresh.exists());
        assert_eq!(sweep(dir.path(), Duration::ZERO).unwrap(), 2, "at start-up everything goes");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(sweep(&dir.path().join("missing"), Duration::ZERO).unwrap(), 0);
    }
}
