/**
 * Preloaded (`--import`) into the servers a test spawns: the test holds the other end of this
 * process's stdin, so when the test process is gone (killed by a timeout, Ctrl-C) stdin ends
 * and the server exits too, instead of living on, orphaned, burning a core for the next run.
 * Unref'd: an open stdin does not keep a server that shuts down on SIGTERM from exiting.
 */
process.stdin.on('end', () => process.exit(1))
process.stdin.on('error', () => process.exit(1))
process.stdin.resume()
process.stdin.unref()
