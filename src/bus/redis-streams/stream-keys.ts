import { type SagaEventType, STREAM_OF_EVENT_TYPE, type StreamName } from '../../domain/events.js';

/** Redis key names, all under one prefix so that several systems can share a Redis. */
export class StreamKeys {
  constructor(readonly prefix: string) {}

  stream(name: StreamName): string {
    return `${this.prefix}${name}`;
  }

  streamOf(eventType: SagaEventType): string {
    return this.stream(STREAM_OF_EVENT_TYPE[eventType]);
  }

  /** Set by the relay with what it publishes: its absence means Redis lost the streams. */
  get relayMarker(): string {
    return `${this.prefix}choreo.relay-marker`;
  }

  get deadLetters(): string {
    return `${this.prefix}choreo.dead-letters`;
  }
}
