/**
 * The samples of a Prometheus text exposition, keyed by name and labels as written
 * (`presenced_x_total{outcome="parked"}`), so tests compare what a scraper would read.
 */
export function prometheusSamples(text: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    samples.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return samples
}
