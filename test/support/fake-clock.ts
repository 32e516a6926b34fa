/**
 * test/support/fake-clock — a settable clock for scheduler tests: pass
 * `clock.now` wherever a `() => number` clock is injected (startApp's
 * `clock`, the store), then move time with `advance`/`set` between
 * `qmgr.runOnce()` calls.
 *
 * It moves only the time Halcyon reads; it does not touch timers (socket
 * timeouts, setTimeout) — those still run on real time, which is what lets a
 * test simulate a day of backoff in seconds while real connections still time out.
 */
export class FakeClock {
  private t: number;

  constructor(start = Date.UTC(2030, 0, 1)) {
    this.t = start;
  }

  /** Bound, so it can be handed out as a plain function. */
  readonly now = (): number => this.t;

  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`FakeClock.advance: expected ms ≥ 0, got ${ms}`);
    this.t += ms;
    return this.t;
  }

  /** Moves to `at`; never backwards (the scheduler assumes time does not go back). */
  set(at: number): number {
    if (at < this.t) throw new RangeError(`FakeClock.set: ${at} is before now (${this.t})`);
    this.t = at;
    return this.t;
  }
}
