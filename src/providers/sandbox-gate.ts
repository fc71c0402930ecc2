/**
 * Test control of the sandbox providers: hold an operation's answer until released, or make its
 * next calls fail, to reproduce races ("the charge is in flight while the client cancels") and
 * provider failures deterministically, without table locks or timers. Production code passes
 * through `pass` without waiting: nothing is held unless a test holds it.
 */
export type GatedOperation =
  | "acquirer.charge"
  | "acquirer.refund"
  | "acquirer.payout"
  | "chain.send"
  | "bank.payout"
  | "bank.status"
  | "bank.return"
  | "identity.pay";

export class SandboxGate {
  readonly #held = new Map<
    GatedOperation,
    { promise: Promise<void>; release: () => void; waiting: number }
  >();
  readonly #failures = new Map<GatedOperation, number>();
  readonly #lostAnswers = new Map<GatedOperation, number>();

  /** Holds every call of `operation` (after the provider recorded it, before it answers) until released. */
  hold(operation: GatedOperation): { release: () => void; waiting: () => number } {
    let release = () => {};
    const promise = new Promise<void>((resolve) => {
      release = resolve;
    });
    const entry = { promise, release: () => {}, waiting: 0 };
    entry.release = () => {
      if (this.#held.get(operation) === entry) this.#held.delete(operation);
      release();
    };
    this.#held.set(operation, entry);
    return { release: entry.release, waiting: () => entry.waiting };
  }

  /** The next `times` calls of `operation` fail (before the provider does anything). */
  failNext(operation: GatedOperation, times = 1): void {
    this.#failures.set(operation, (this.#failures.get(operation) ?? 0) + times);
  }

  /** The next `times` calls of `operation` act, then fail instead of answering (the answer is lost). */
  loseAnswers(operation: GatedOperation, times = 1): void {
    this.#lostAnswers.set(operation, (this.#lostAnswers.get(operation) ?? 0) + times);
  }

  /** Called by a sandbox provider before it acts: throws if a failure was asked for. */
  before(operation: GatedOperation): void {
    const left = this.#failures.get(operation) ?? 0;
    if (left > 0) {
      this.#failures.set(operation, left - 1);
      throw new SandboxProviderError(operation);
    }
  }

  /** Called by a sandbox provider after it acted, before it answers: waits while the operation is held. */
  async after(operation: GatedOperation): Promise<void> {
    const lost = this.#lostAnswers.get(operation) ?? 0;
    if (lost > 0) {
      this.#lostAnswers.set(operation, lost - 1);
      throw new SandboxProviderError(operation);
    }
    const entry = this.#held.get(operation);
    if (!entry) return;
    entry.waiting++;
    try {
      await entry.promise;
    } finally {
      entry.waiting--;
    }
  }

  releaseAll(): void {
    for (const entry of [...this.#held.values()]) entry.release();
    this.#failures.clear();
    this.#lostAnswers.clear();
  }
}

export class SandboxProviderError extends Error {
  constructor(operation: string) {
    super(`the sandbox provider failed ${operation} (injected)`);
    this.name = "SandboxProviderError";
  }
}
