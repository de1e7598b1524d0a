//! A relying party built on the `openidconnect` crate, authenticating with private_key_jwt
//! (RS512 client assertions), as a partner's real integration would.

use std::future::Future;
use std::pin::Pin;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreTokenResponse};
use openidconnect::{
    AccessToken, AuthorizationCode, ClientId, CsrfToken, HttpRequest, HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse as _,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse as _,
};

use super::{TestApp, TestPartner};

#[derive(Debug)]
pub struct HttpError(pub String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for HttpError {}

type HttpFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send>>;

/// The library's HTTP client: a closure over reqwest.
pub fn http_client() -> impl Fn(HttpRequest) -> HttpFuture {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    move |req: HttpRequest| {
        let http = http.clone();
        Box::pin(async move {
            let mut builder = http.request(req.method().clone(), req.uri().to_string()).body(req.body().clone());
            for (k, v) in req.headers() {
                builder = builder.header(k, v);
            }
            let res = builder.send().await.map_err(|e| HttpError(e.to_string()))?;
            let mut out = openidconnect::http::Response::builder().status(res.status());
            for (k, v) in res.headers() {
                out = out.header(k, v);
            }
            let body = res.bytes().await.map_err(|e| HttpError(e.to_string()))?.to_vec();
            out.body(body).map_err(|e| HttpError(e.to_string()))
        }) as HttpFuture
    }
}

pub struct Rp<'a> {
    pub app: &'a TestApp,
    pub partner: &'a TestPartner,
    pub metadata: CoreProviderMetadata,
}

/// What the partner keeps between sending the citizen and the callback.
pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

impl<'a> Rp<'a> {
    pub async fn discover(app: &'a TestApp, partner: &'a TestPartner) -> Rp<'a> {
        let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http_client())
            .await
            .expect("discovery document accepted by the openidconnect crate");
        Rp { app, partner, metadata }
    }

    fn client(&self) -> openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(self.metadata.clone(), ClientId::new(self.partner.client_id.clone()), None)
            .set_redirect_uri(RedirectUrl::new(self.partner.redirect_uri.clone()).unwrap())
    }

    pub fn start(&self, scopes: &[&str], vtr: &str) -> Started {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client();
        let mut req = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .set_pkce_challenge(challenge)
            .add_extra_param("vtr", vtr);
        for s in scopes {
            req = req.add_scope(Scope::new(s.to_string()));
        }
        let (url, state, nonce) = req.url();
        Started { url: url.to_string(), state: state.secret().clone(), nonce, verifier }
    }

    fn assertion(&self) -> String {
        self.partner.signer.client_assertion(&format!("{}/token", self.app.base)).unwrap()
    }

    pub async fn exchange(&self, code: &str, verifier: PkceCodeVerifier) -> CoreTokenResponse {
        self.client()
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .expect("token endpoint known")
            .set_pkce_verifier(verifier)
            .add_extra_param("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            .add_extra_param("client_assertion", self.assertion())
            .request_async(&http_client())
            .await
            .expect("token exchange")
    }

    /// Validates the ID token with the library (signature via JWKS, iss, aud, exp, nonce,
    /// RS512 only) and returns its payload as JSON for the NHS login claims (`vot`, ...).
    pub fn verify_id_token(&self, tokens: &CoreTokenResponse, nonce: &Nonce) -> serde_json::Value {
        let id_token = tokens.id_token().expect("id_token present");
        let client = self.client();
        let verifier = client.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512]);
        id_token.claims(&verifier, nonce).expect("ID token valid");
        let payload = id_token.to_string().split('.').nth(1).map(String::from).unwrap();
        serde_json::from_slice(&citizen_id::crypto::b64url_decode(&payload).unwrap()).unwrap()
    }

    pub async fn userinfo(&self, access: &AccessToken, sub: &str) -> openidconnect::core::CoreUserInfoClaims {
        self.client()
            .user_info(access.clone(), Some(openidconnect::SubjectIdentifier::new(sub.to_string())))
            .expect("userinfo endpoint known")
            .request_async(&http_client())
            .await
            .expect("userinfo")
    }

    pub async fn refresh(&self, refresh: &RefreshToken) -> Result<CoreTokenResponse, String> {
        self.client()
            .exchange_refresh_token(refresh)
            .expect("token endpoint known")
            .add_extra_param("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            .add_extra_param("client_assertion", self.assertion())
            .request_async(&http_client())
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r) => r.error().to_string(),
                other => other.to_string(),
            })
    }
}

pub fn access_token(t: &CoreTokenResponse) -> AccessToken {
    t.access_token().clone()
}

pub fn refresh_token(t: &CoreTokenResponse) -> RefreshToken {
    t.refresh_token().cloned().expect("refresh token issued")
}
