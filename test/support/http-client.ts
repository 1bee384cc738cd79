export interface HttpResponse {
  status: number;
  body: unknown;
  text: string;
}

/**
 * Talks to a running choreo over real HTTP, sending its bearer token on every request (the system's staff
 * token, as TestSystem builds it); `as(token)` and `anonymous()` give a client that acts otherwise.
 */
export class HttpClient {
  constructor(
    readonly baseUrl: string,
    readonly token: string | null = null,
  ) {}

  /** The same choreo, called with another token (a client's, say). */
  as(token: string): HttpClient {
    return new HttpClient(this.baseUrl, token);
  }

  /** The same choreo, called without any token. */
  anonymous(): HttpClient {
    return new HttpClient(this.baseUrl, null);
  }

  /** The Authorization header this client sends, if any, for a test that calls fetch itself. */
  get authorization(): Record<string, string> {
    return this.token === null ? {} : { authorization: `Bearer ${this.token}` };
  }

  request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpResponse> {
    const sent = { ...this.authorization, ...headers };
    const init: RequestInit = { method, headers: sent };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      init.headers = { 'content-type': 'application/json', ...sent };
    }
    return fetch(`${this.baseUrl}${path}`, init).then(async (response) => {
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON (metrics, SVG): keep the text
      }
      return { status: response.status, body: parsed, text };
    });
  }

  get(path: string): Promise<HttpResponse> {
    return this.request('GET', path);
  }

  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpResponse> {
    return this.request('POST', path, body ?? {}, headers);
  }

  put(path: string, body: unknown): Promise<HttpResponse> {
    return this.request('PUT', path, body);
  }

  delete(path: string): Promise<HttpResponse> {
    return this.request('DELETE', path);
  }
}
