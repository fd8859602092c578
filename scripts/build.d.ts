/** Why a build is needed, or undefined when dist/ is up to date. */
export function staleReason(): string | undefined
/** A full build: the SDK, then the server into a clean dist/. */
export function build(): void
/** Builds when stale, waiting for a build another process is running. */
export function buildIfStale(log?: (line: string) => void): void
/** A full build under the build lock, waiting for a build another process is running. */
export function buildLocked(log?: (line: string) => void): void
