//! How a long-running process knows to stop: the one-machine server, the local stack and
//! the sandboxes a test starts all wait on [`until_stopped`].

/// Resolves on SIGTERM or Ctrl-C, or also when stdin reaches end of file if
/// `exit_on_stdin_eof` (the parent test closed it or exited): a server a test starts
/// stops by itself.
pub async fn until_stopped(exit_on_stdin_eof: bool) {
    if exit_on_stdin_eof {
        tokio::select! {
            _ = stdin_closed() => {}
            _ = terminated() => {}
        }
    } else {
        terminated().await;
    }
}

/// Read on a plain thread: tokio's stdin would keep the runtime from shutting down.
async fn stdin_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = tx.send(());
    });
    let _ = rx.await;
}

async fn terminated() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
