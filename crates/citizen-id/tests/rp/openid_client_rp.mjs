// A partner built on openid-client v6, with the library's defaults.
//
// Set: the issuer (discovery), the client id, the private key (PKCS#8 PEM, imported for RS512:
// spec 7.2, the partner must sign with RS512) and the `vtr` parameter. Everything else is
// openid-client's: its client assertion (aud = the issuer, exp = iat + 60, nbf, a fresh jti),
// its ID token checks, its refresh request (no scope). One thing is not a default and cannot
// be: the test server speaks plain HTTP on localhost, which openid-client refuses unless
// told (allowInsecureRequests); it changes nothing in what is sent.
//
// Run by tests/it/partner_libraries.rs: argv is ISSUER CLIENT_ID KEY_PEM_FILE REDIRECT_URI and
// CITIZEN_ID_RP_NODE names the folder whose node_modules holds openid-client. Prints
// "AUTHORIZE <url>", reads the callback URL from stdin, prints "RESULT <json>".

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'

const require = createRequire(join(process.env.CITIZEN_ID_RP_NODE, 'package.json'))
const client = await import(pathToFileURL(require.resolve('openid-client')).href)

const [issuer, clientId, keyFile, redirectUri] = process.argv.slice(2)
const pem = readFileSync(keyFile, 'ascii')
const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64')
const key = await crypto.subtle.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512' }, false, ['sign'])

const config = await client.discovery(new URL(issuer), clientId, undefined, client.PrivateKeyJwt(key), {
  execute: [client.allowInsecureRequests],
})

// The client assertions openid-client sends (for the test to check its defaults were in play).
const assertions = []
config[client.customFetch] = (url, options) => {
  const body = new URLSearchParams(typeof options.body === 'string' ? options.body : options.body?.toString() ?? '')
  const assertion = body.get('client_assertion')
  if (assertion) assertions.push(JSON.parse(Buffer.from(assertion.split('.')[1], 'base64url')))
  return fetch(url, options)
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const verifier = client.randomPKCECodeVerifier()
const nonce = client.randomNonce()
const state = client.randomState()
const url = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid email profile',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  nonce,
  state,
  vtr: '["P0.Cp.Cd"]',
})
console.log('AUTHORIZE ' + url.href)
const callback = (await lines.next()).value.trim()

const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
  pkceCodeVerifier: verifier,
  expectedNonce: nonce,
  expectedState: state,
  idTokenExpected: true,
})
const claims = tokens.claims()
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
const after = await client.fetchUserInfo(config, refreshed.access_token, claims.sub)

console.log('RESULT ' + JSON.stringify({
  id_token: claims,
  userinfo,
  refreshed: {
    scope: refreshed.scope,
    rotated: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
    userinfo_sub: after.sub,
  },
  assertions,
}))
process.exit(0)
