/** The explorer talks to choreo's HTTP API only; errors carry the API's `{ message }`. */
import { authorization, SignedOut, signedOut } from './session.js';

const TOKEN_REFUSED = 'Your token is no longer accepted: sign in again.';

async function parse(response) {
  const text = await response.text();
  let body = null;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    body = null;
  }
  if (response.status === 401) {
    signedOut(TOKEN_REFUSED);
    throw new SignedOut(TOKEN_REFUSED);
  }
  if (!response.ok) {
    const message = body && typeof body.message === 'string' ? body.message : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

export async function getJson(url) {
  return parse(await fetch(url, { headers: { accept: 'application/json', ...authorization() } }));
}

export async function postJson(url, body) {
  const init = { method: 'POST', headers: { accept: 'application/json', ...authorization() } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return parse(await fetch(url, init));
}

/**
 * Who a token belongs to, asked without signing anyone out: { role: 'staff' } or
 * { role: 'client', client_id }, or null when the API refuses the token.
 */
export async function callerOf(token) {
  const response = await fetch('/api/explorer/session', {
    headers: { accept: 'application/json', authorization: `Bearer ${token}` },
  });
  if (response.status === 401) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(body && typeof body.message === 'string' ? body.message : `HTTP ${response.status}`);
  }
  return body;
}

let picture = null;

/** The order machine as the server draws it (once per page load). */
export function machinePicture() {
  picture ??= getJson('/api/explorer/machine').catch((error) => {
    picture = null;
    throw error;
  });
  return picture;
}
