"""A partner built on Authlib (requests client), with the library's defaults.

Set: the issuer (discovery), the client id, the private key (PEM) with RS512 (spec 7.2: the
partner must sign with RS512; Authlib's default is RS256) and the `vtr` parameter. Everything
else is Authlib's: its client assertion (aud = token endpoint, exp = iat + 3600, a fresh jti),
its token request, its refresh request (which repeats the session's scope).

Run by tests/it/partner_libraries.rs: argv is ISSUER CLIENT_ID KEY_PEM_FILE REDIRECT_URI. It
prints "AUTHORIZE <url>", reads the callback URL the browser reached on stdin, then prints
"RESULT <json>" with what the partner saw.
"""

import base64
import json
import sys
from urllib.parse import parse_qsl

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

issuer, client_id, key_file, redirect_uri = sys.argv[1:5]
meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
with open(key_file, encoding="ascii") as f:
    private_key = f.read()

session = OAuth2Session(
    client_id,
    private_key,
    scope="openid email profile",
    redirect_uri=redirect_uri,
    token_endpoint_auth_method="private_key_jwt",
    code_challenge_method="S256",
)
session.register_client_auth_method(PrivateKeyJWT(meta["token_endpoint"], alg="RS512"))

# The client assertions Authlib sends, as the server receives them (for the test to check the
# library's defaults were in play): the payload of each, undecoded otherwise.
assertions = []


def record(response, *args, **kwargs):
    body = response.request.body or ""
    if isinstance(body, bytes):
        body = body.decode()
    for name, value in parse_qsl(body):
        if name == "client_assertion":
            payload = value.split(".")[1]
            assertions.append(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


session.hooks["response"].append(record)

nonce = generate_token(20)
verifier = generate_token(48)
url, state = session.create_authorization_url(
    meta["authorization_endpoint"], nonce=nonce, code_verifier=verifier, vtr='["P0.Cp.Cd"]'
)
print("AUTHORIZE " + url, flush=True)
callback = sys.stdin.readline().strip()

token = session.fetch_token(
    meta["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier
)

# The ID token, validated as Authlib's OpenID clients do (OpenIDMixin.parse_id_token).
keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
decoded = jwt.decode(
    token["id_token"],
    keys,
    registry=JWSRegistry(algorithms=meta["id_token_signing_alg_values_supported"], strict_check_header=False),
)
id_claims = CodeIDToken(
    decoded.claims,
    decoded.header,
    {"iss": {"values": [meta["issuer"]]}},
    {"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
)
id_claims.validate(leeway=120)

userinfo = session.get(meta["userinfo_endpoint"], timeout=10)
userinfo.raise_for_status()

first_refresh = token["refresh_token"]
refreshed = session.refresh_token(meta["token_endpoint"])
after = session.get(meta["userinfo_endpoint"], timeout=10)

print("RESULT " + json.dumps({
    "id_token": dict(id_claims),
    "userinfo": userinfo.json(),
    "refreshed": {
        "scope": refreshed.get("scope"),
        "rotated": bool(refreshed.get("refresh_token")) and refreshed["refresh_token"] != first_refresh,
        "userinfo_status": after.status_code,
    },
    "assertions": assertions,
}), flush=True)
