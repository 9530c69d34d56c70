/**
 * The run's timeline (where the hours went: builds, reboots, epochs), recorded by workflow code as it
 * goes and kept in run.json for the report. Pure and deterministic: the clock is passed in, and by
 * default it is `Date.now()`, which inside a Temporal workflow is the time of the current workflow
 * task (the SDK replaces Date with the activation's timestamp), so a replay records the same spans.
 */

/** What a span was spent on; the report groups by it. */
export type TimelineKind = 'setup' | 'wait' | 'build' | 'reboot' | 'messaging-layer' | 'epoch' | 'vm' | 'benchmark' | 'report';

export type SpanOutcome = 'ok' | 'failed' | 'cancelled';

export interface TimelineSpan {
  /** Unique among the open spans, e.g. `fragvisor/prepare-hosts` or `fragvisor/E1-n2`; may recur once closed (a retried step). */
  key: string;
  what: TimelineKind;
  /** ISO 8601 (UTC), workflow time. */
  start: string;
  /** Absent while the span is open (a run that stopped inside it). */
  end?: string;
  outcome?: SpanOutcome;
}

export interface TimelineRecorder {
  /** Opens a span; a key that is already open is a programming error (TypeError). */
  start(key: string, what: TimelineKind): void;
  /** Closes the open span `key` (TypeError when none is open). */
  end(key: string, outcome?: SpanOutcome): void;
  /** `work` inside a span: closed `ok` when it resolves, `failed` when it throws (the error goes on). */
  span<T>(key: string, what: TimelineKind, work: () => Promise<T>): Promise<T>;
  /** Closes every open span (for a finally block: a failed or cancelled run). */
  closeOpen(outcome: Exclude<SpanOutcome, 'ok'>): void;
  /** The spans so far, in start order (a copy). */
  spans(): TimelineSpan[];
}

interface Span {
  key: string;
  what: TimelineKind;
  start: number;
  end?: number;
  outcome?: SpanOutcome;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function timeline(now: () => number = () => Date.now()): TimelineRecorder {
  const all: Span[] = [];
  const open = new Map<string, Span>();

  const close = (span: Span, outcome: SpanOutcome) => {
    span.end = now();
    span.outcome = outcome;
    open.delete(span.key);
  };

  const recorder: TimelineRecorder = {
    start(key, what) {
      if (key === '') throw new TypeError('timeline: a span needs a key');
      if (open.has(key)) throw new TypeError(`timeline: span ${JSON.stringify(key)} is already open`);
      const span: Span = { key, what, start: now() };
      all.push(span);
      open.set(key, span);
    },
    end(key, outcome = 'ok') {
      const span = open.get(key);
      if (!span) throw new TypeError(`timeline: no open span ${JSON.stringify(key)} to end`);
      close(span, outcome);
    },
    async span(key, what, work) {
      recorder.start(key, what);
      try {
        const value = await work();
        recorder.end(key, 'ok');
        return value;
      } catch (err) {
        // closeOpen() may have closed it meanwhile (a cancellation handled elsewhere).
        if (open.has(key)) recorder.end(key, 'failed');
        throw err;
      }
    },
    closeOpen(outcome) {
      for (const span of [...open.values()]) close(span, outcome);
    },
    spans() {
      return all.map((s) => ({ key: s.key, what: s.what, start: iso(s.start), ...(s.end !== undefined ? { end: iso(s.end), outcome: s.outcome } : {}) }));
    },
  };
  return recorder;
}
