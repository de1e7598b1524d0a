// Passkeys (FIDO2/WebAuthn) for Citizen ID: the browser half of the ceremonies whose server
// half is /passkeys/register/* and /passkeys/signin/*. Loaded as a module with the page's CSP
// nonce. Pages work without it; it only reveals the passkey buttons ([hidden] by default)
// when the browser has window.PublicKeyCredential.
//
// Wire format: the server sends webauthn-rs's JSON (binary fields in base64url) and expects
// the credential back the same way; the conversions are done by hand so that browsers
// without PublicKeyCredential.parse*FromJSON work too.

const supported = typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;

const toBytes = (b64url) => {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
};

const toB64url = (buffer) => {
  const bytes = new Uint8Array(buffer);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

function creationOptions(json) {
  const pk = json.publicKey;
  pk.challenge = toBytes(pk.challenge);
  pk.user.id = toBytes(pk.user.id);
  (pk.excludeCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
  return pk;
}

function requestOptions(json) {
  const pk = json.publicKey;
  pk.challenge = toBytes(pk.challenge);
  (pk.allowCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
  return pk;
}

function registrationJSON(cred) {
  const ext = cred.getClientExtensionResults ? cred.getClientExtensionResults() : {};
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    response: {
      attestationObject: toB64url(cred.response.attestationObject),
      clientDataJSON: toB64url(cred.response.clientDataJSON),
      transports: cred.response.getTransports ? cred.response.getTransports() : undefined,
    },
    extensions: ext && ext.credProps ? { credProps: ext.credProps } : {},
  };
}

function assertionJSON(cred) {
  const r = cred.response;
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    response: {
      authenticatorData: toB64url(r.authenticatorData),
      clientDataJSON: toB64url(r.clientDataJSON),
      signature: toB64url(r.signature),
      userHandle: r.userHandle ? toB64url(r.userHandle) : null,
    },
    extensions: {},
  };
}

async function post(path, csrf, body) {
  const res = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
    body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  // A sensitive step after the re-authentication window ran out: confirm it's you first.
  if (!res.ok && typeof json.reauth === 'string' && json.reauth.startsWith('/')) window.location.assign(json.reauth);
  if (!res.ok) throw new ServerError(json.error || 'Something went wrong. Try again.');
  return json;
}

class ServerError extends Error {}

function showError(message) {
  const box = document.querySelector('[data-passkey-error]');
  if (!box) return;
  box.querySelector('[data-passkey-error-text]').textContent = message;
  box.hidden = false;
  box.focus();
}

function describe(err, action) {
  if (err instanceof ServerError) return err.message;
  if (err && err.name === 'InvalidStateError') return 'This device already has a passkey for your account.';
  if (err && err.name === 'NotAllowedError') return `The passkey was not ${action}. Try again, or use another way.`;
  return 'Something went wrong with your passkey. Try again, or use another way.';
}

// Creating a passkey: [data-passkey-create] with data-csrf and data-next.
function setUpCreate(root) {
  const button = root.querySelector('#passkey-create');
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const options = await post('/passkeys/register/start', root.dataset.csrf, {});
      const cred = await navigator.credentials.create({ publicKey: creationOptions(options) });
      const name = (root.querySelector('#passkey-name') || {}).value || '';
      await post('/passkeys/register/finish', root.dataset.csrf, { name, credential: registrationJSON(cred) });
      window.location.assign(root.dataset.next);
    } catch (err) {
      showError(describe(err, 'created'));
      button.disabled = false;
    }
  });
}

// Signing in: the button (with the typed email, or usernameless), and the browser's autofill
// (conditional mediation) on the email field. With data-passkey-reauth ("Confirm it's you"),
// the ceremony is for the signed-in account only and no email is sent.
function setUpSignIn(root) {
  const csrf = root.dataset.csrf;
  const reauth = 'passkeyReauth' in root.dataset;
  const button = root.querySelector('#passkey-signin');
  let autofill = null; // { abort: AbortController, started: Promise }

  const finish = async (cred) => {
    const done = await post('/passkeys/signin/finish', csrf, { credential: assertionJSON(cred) });
    window.location.assign(done.next || '/authorize/resume');
  };

  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      if (autofill) {
        // One ceremony per session at a time: wait for the autofill's start, then cancel it.
        autofill.abort.abort();
        await autofill.started.catch(() => {});
        autofill = null;
      }
      const email = (document.querySelector('#email') || {}).value || '';
      const body = reauth ? { reauth: true } : (email.trim() ? { email: email.trim() } : {});
      const options = await post('/passkeys/signin/start', csrf, body);
      delete options.mediation;
      const cred = await navigator.credentials.get({ publicKey: requestOptions(options) });
      await finish(cred);
    } catch (err) {
      showError(describe(err, 'used'));
      button.disabled = false;
    }
  });

  const field = reauth ? null : document.querySelector('input[autocomplete~="webauthn"]');
  const conditional = PublicKeyCredential.isConditionalMediationAvailable;
  if (!field || typeof conditional !== 'function') return;
  conditional.call(PublicKeyCredential).then((available) => {
    if (!available || button.disabled) return;
    const abort = new AbortController();
    const started = post('/passkeys/signin/start', csrf, {});
    autofill = { abort, started };
    started
      .then((options) => navigator.credentials.get({ publicKey: requestOptions(options), mediation: 'conditional', signal: abort.signal }))
      .then((cred) => cred && finish(cred))
      .catch((err) => {
        if (!abort.signal.aborted && err && err.name !== 'AbortError') showError(describe(err, 'used'));
      });
  });
}

if (supported) {
  document.querySelectorAll('[data-passkey-unsupported]').forEach((el) => { el.hidden = true; });
  document.querySelectorAll('[data-passkey-requires]').forEach((el) => { el.hidden = false; });
  document.querySelectorAll('[data-passkey-create]').forEach((el) => { el.hidden = false; setUpCreate(el); });
  document.querySelectorAll('[data-passkey-signin]').forEach((el) => { el.hidden = false; setUpSignIn(el); });
}
