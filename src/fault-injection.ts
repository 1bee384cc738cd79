/**
 * Crash points for the reliability tests: with CHOREO_FAULT="consumer.after-commit:0.05", the process
 * kills itself with SIGKILL (no cleanup, like a power cut) at that point with that probability. Unset, as
 * in production, every call is a no-op.
 */
export const FAULT_POINTS = [
  /** A service's transaction did its work but has not committed. */
  'consumer.before-commit',
  /** The transaction committed; the stream entry is not acknowledged yet. */
  'consumer.after-commit',
  /** The entry was acknowledged. */
  'consumer.after-ack',
  /** The relay published a batch to Redis; its checkpoint has not committed. */
  'relay.after-publish',
] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

function parse(spec: string | undefined): Map<string, number> {
  const probabilities = new Map<string, number>();
  for (const part of (spec ?? '').split(',').filter(Boolean)) {
    const [point = '', probability = ''] = part.split(':');
    const value = Number(probability);
    if (!(FAULT_POINTS as readonly string[]).includes(point) || !(value >= 0 && value <= 1)) {
      throw new Error(
        `CHOREO_FAULT: "${part}" is not <point>:<probability> with a point among ${FAULT_POINTS.join(', ')}`,
      );
    }
    probabilities.set(point, value);
  }
  return probabilities;
}

const probabilities = parse(process.env.CHOREO_FAULT);

export function crashPoint(point: FaultPoint): void {
  const probability = probabilities.get(point);
  if (probability !== undefined && Math.random() < probability) process.kill(process.pid, 'SIGKILL');
}
