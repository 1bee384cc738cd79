/**
 * Who the explorer acts for: a staff or a client token, kept in this tab's sessionStorage only (never in a
 * URL, localStorage or a cookie), and sent in the Authorization header of every API call.
 */

const TOKEN_KEY = 'choreo.explorer.token';

export function savedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage refused (a privacy setting): nothing was kept.
  }
}

/** The headers that carry the token (none when no token is kept). */
export function authorization() {
  const token = savedToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Raised when the API refuses the token (401): the page forgets it and asks for one again. */
export class SignedOut extends Error {
  constructor(message = 'Sign in to see the explorer.') {
    super(message);
    this.name = 'SignedOut';
  }
}

const SIGNED_OUT = 'choreo:signed-out';

/** Forgets the token and tells the page (which shows the sign-in form), once per refusal. */
export function signedOut(message) {
  forgetToken();
  window.dispatchEvent(new CustomEvent(SIGNED_OUT, { detail: { message } }));
}

export function onSignedOut(listener) {
  window.addEventListener(SIGNED_OUT, (event) => listener(event.detail.message));
}
