/** The explorer talks to choreo's HTTP API only; errors carry the API's `{ message }`. */

async function parse(response) {
  const text = await response.text();
  const body = text === '' ? null : JSON.parse(text);
  if (!response.ok) {
    const message = body && typeof body.message === 'string' ? body.message : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

export async function getJson(url) {
  return parse(await fetch(url, { headers: { accept: 'application/json' } }));
}

export async function postJson(url, body) {
  const init = { method: 'POST', headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return parse(await fetch(url, init));
}

let picture = null;

/** The order machine as the server draws it (once per page load). */
export function machinePicture() {
  picture ??= getJson('/api/explorer/machine');
  return picture;
}
