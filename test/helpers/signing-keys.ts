import { exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'

/** A platform's signing key as the JWKS tests use it: its private half and its public JWK. */
export interface SigningKey {
  kid: string
  privateKey: CryptoKey
  jwk: JWK
}

/** A fresh ES256 key published under `kid`. */
export async function makeKey(kid: string): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } }
}
