import { Agent, request } from 'node:http';

export interface Reply {
  status: number;
  body: unknown;
}

/**
 * A keep-alive HTTP client light enough to generate load from the same 2-core machine; it sends the bearer
 * token it is given (the staff token of the choreo it drives) on every request.
 */
export class BenchHttp {
  private readonly agent: Agent;
  private readonly url: URL;
  private readonly authorization: Record<string, string>;

  constructor(baseUrl: string, maxSockets = 64, token?: string) {
    this.url = new URL(baseUrl);
    this.agent = new Agent({ keepAlive: true, maxSockets });
    this.authorization = token === undefined ? {} : { authorization: `Bearer ${token}` };
  }

  send(method: string, path: string, body?: unknown): Promise<Reply> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.url.hostname,
          port: this.url.port,
          method,
          path,
          agent: this.agent,
          headers: payload
            ? {
                ...this.authorization,
                'content-type': 'application/json',
                'content-length': Buffer.byteLength(payload),
              }
            : this.authorization,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // not JSON
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Runs `items` through `work` with at most `concurrency` in flight. */
export async function inParallel<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index] as T, index);
      }
    }),
  );
  return results;
}
