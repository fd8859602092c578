import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

/** Spawns a node process (TypeScript through tsx) and resolves with its first JSON stdout line. */
export function spawnJson<T>(
  script: string,
  args: string[],
  nodeFlags: string[] = [],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; info: T }> {
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  })
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.once('line', (line) => resolve({ child, info: JSON.parse(line) as T }))
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)))
  })
}

export function ratio(a: number, b: number): string {
  return `${((a / b) * 100).toFixed(1)} %`
}
