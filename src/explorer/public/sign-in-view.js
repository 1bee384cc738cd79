import { callerOf } from './api.js';
import { fill, h } from './dom.js';
import { saveToken } from './session.js';

/** What a token may hold: printable ASCII, no spaces (what an Authorization header can carry). */
const TOKEN_SHAPE = /^[\x21-\x7e]+$/;

/**
 * The sign-in form: one token, staff or client. Nothing is asked of the API before it is submitted; the
 * token is checked, then kept in this tab's sessionStorage. The field has no name, so that even a form
 * submitted without its script would carry no token (and it is posted, never put in a URL).
 */
export function mountSignIn(view, { notice, signedIn }) {
  const token = h('input', {
    id: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    size: 48,
    'aria-describedby': 'token-help',
  });
  const submit = h('button', { type: 'submit', text: 'Sign in' });
  const message = h('div', { role: 'status', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'sign-in', method: 'post', 'aria-labelledby': 'sign-in-title' },
    h('label', { for: 'token', text: 'Staff or client token' }),
    h('div', { class: 'sign-in-row' }, token, submit),
    h(
      'p',
      { id: 'token-help', class: 'sub' },
      'The staff token is in ',
      h('code', { text: '.choreo/admin-token' }),
      ' (or ',
      h('code', { text: 'CHOREO_ADMIN_TOKEN' }),
      ' when it is set). A client’s token is the one choreo answered when the client was created.',
    ),
    message,
  );
  view.append(
    h(
      'section',
      { class: 'panel sign-in-panel' },
      h('h1', { id: 'sign-in-title', text: 'Sign in' }),
      notice ? h('p', { class: 'message', text: notice }) : null,
      form,
    ),
  );

  function refuse(text) {
    fill(message, h('p', { class: 'message error', role: 'alert', text }));
    token.setAttribute('aria-invalid', 'true');
    token.focus();
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const candidate = token.value.trim();
    if (!TOKEN_SHAPE.test(candidate)) {
      refuse('A token is one word of letters, digits and signs, without spaces.');
      return;
    }
    submit.disabled = true;
    try {
      const caller = await callerOf(candidate);
      if (caller === null) {
        refuse('This token is not accepted: it is neither the staff token nor a client’s current token.');
        return;
      }
      saveToken(candidate);
      signedIn(caller);
    } catch (error) {
      refuse(`Could not check the token: ${error.message}`);
    } finally {
      submit.disabled = false;
    }
  });
  token.focus();
}
