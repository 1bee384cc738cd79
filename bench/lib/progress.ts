/** One status line on a terminal, plain lines elsewhere (CI logs). */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private lastPlain = 0;

  update(text: string): void {
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${text}`);
      return;
    }
    const now = Date.now();
    if (now - this.lastPlain < 2_000) return;
    this.lastPlain = now;
    process.stderr.write(`  ${text}\n`);
  }

  done(text: string): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`${text}\n`);
  }
}

export function section(title: string): void {
  process.stderr.write(`\n== ${title}\n`);
}
