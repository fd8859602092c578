import type { UserId } from '../core/user-id.js'
import type { CatalogueStore } from './catalogue-store.js'
import type { CredentialStore } from './credential-store.js'
import type { PrivacyStore } from './privacy-store.js'

/**
 * The durable stores of one backend. Each concern has its own port (PrivacyStore,
 * CatalogueStore, CredentialStore); one adapter per backend implements all three over one
 * connection or file, so an import chunk or a shutdown touches one resource.
 */
export interface ProfileStore extends PrivacyStore, CatalogueStore, CredentialStore {
  ready(): Promise<boolean>
  close(): Promise<void>
}

/** Where the embedded presence store keeps lastOnline durably. */
export interface LastOnlineLedger {
  loadLastOnline(): Iterable<[UserId, number]>
  saveLastOnline(entries: ReadonlyArray<readonly [UserId, number]>): void
}
