export interface HttpResponse {
  status: number;
  body: unknown;
  text: string;
}

/** Talks to a running choreo over real HTTP. */
export class HttpClient {
  constructor(readonly baseUrl: string) {}

  request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpResponse> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      init.headers = { 'content-type': 'application/json', ...headers };
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
