import { MemoryHistory } from './history.js'
import { historyContract } from './history.contract.js'

historyContract('memory', (bounds) =>
  Promise.resolve({ history: new MemoryHistory(bounds), cleanup: () => Promise.resolve() }),
)
