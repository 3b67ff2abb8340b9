// A pino logger whose lines a test can read back: what a component logs is part of what it
// promises (a reason for every refused frame, nothing at info when all is well).
import { Writable } from 'node:stream';
import { type Logger, pino } from 'pino';

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly logger: Logger;

  constructor(level: keyof typeof LEVEL = 'debug') {
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        for (const line of chunk.toString('utf8').split('\n'))
          if (line !== '') this.lines.push(JSON.parse(line) as LogLine);
        done();
      },
    });
    this.logger = pino({ level }, sink);
  }

  /** The lines at `level` or above whose message is `msg` (any message when none is named). */
  at(level: keyof typeof LEVEL, msg?: string): LogLine[] {
    return this.lines.filter(
      (l) => l.level >= LEVEL[level] && (msg === undefined || l.msg === msg),
    );
  }
}
