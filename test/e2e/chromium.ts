import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { chromium, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'

/**
 * Headless and quiet: no background networking, sync, component updates or QUIC, so the page's
 * requests are the only ones.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Where screenshots go (ignored by git). */
export const OUTPUT = fileURLToPath(new URL('../../test-output/', import.meta.url))

/** For `test(..., { skip })`: the e2e tests need Debian's Chromium and say so when it is missing. */
export const skipWithoutChromium = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing (apt-get install chromium)`

/**
 * Headless Chromium on a fresh profile (its own user-data-dir, removed after the test), quiet:
 * no background networking, sync, component updates or QUIC, so the page's requests are the
 * only ones.
 */
export async function openPage(
  t: TestContext,
  viewport: { width: number; height: number },
): Promise<Page> {
  const profile = mkdtempSync(join(tmpdir(), 'presenced-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    viewport,
  })
  t.after(async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  })
  return context.pages()[0] ?? (await context.newPage())
}
