/** The process's memory after full collections (a no-op collection without --expose-gc). */
export function settle(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc
  for (let i = 0; gc && i < 3; i++) gc()
  return process.memoryUsage()
}

/** Exits with a clear message unless the process runs with --expose-gc. */
export function requireGc(command: string): void {
  if ((globalThis as { gc?: () => void }).gc) return
  console.error(`run with: ${command}`)
  process.exit(1)
}
