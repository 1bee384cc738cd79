import { createServer } from 'node:net';

/** A TCP port nobody listens on right now, for a child process that needs one chosen in advance. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read the port the probe server listened on'));
      });
    });
  });
}
