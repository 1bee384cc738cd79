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

  /**
   * The entries re-driven onto a stream, each (`<entry id> <stream key>`) scored by its event's position:
   * published again out of position order, each holds the positions of its stream's groups below it until
   * every group is done with it (see GroupPositionRecorder; the trimmer forgets it then).
   */
  get redriven(): string {
    return `${this.prefix}choreo.redriven`;
  }

  get deadLetters(): string {
    return `${this.prefix}choreo.dead-letters`;
  }
}
