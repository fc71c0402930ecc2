import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";

export interface Worker {
  readonly name: string;
  /** Stops the loop; resolves once the round in progress (if any) has finished, and `drain` after it. */
  stop(): Promise<void>;
  /** Runs the next round now instead of after the interval (work has arrived, a slot is free). */
  wake(): void;
}

/**
 * A small loop: run one round, wait, repeat. A round that did a full batch of work runs again at
 * once, as does one woken meanwhile; an error is logged and the loop carries on after the interval.
 */
export function startWorker(options: {
  name: string;
  intervalMs: number;
  logger: Logger;
  /** Does one round; returns true when there may be more work right away. */
  round: () => Promise<boolean>;
  /** After the last round, on stop: what the loop started and has not finished (bounded by the caller). */
  drain?: () => Promise<void>;
}): Worker {
  const controller = new AbortController();
  const log = options.logger.child({ worker: options.name });
  let woken = false;
  let nap: AbortController | undefined;
  const loop = (async () => {
    while (!controller.signal.aborted) {
      woken = false;
      let more = false;
      try {
        more = await options.round();
      } catch (error) {
        log.error({ err: error }, "worker round failed");
      }
      if (!more && !woken) {
        nap = new AbortController();
        const signal = AbortSignal.any([controller.signal, nap.signal]);
        await sleep(options.intervalMs, undefined, { signal }).catch(() => {});
        nap = undefined;
      }
    }
  })();
  return {
    name: options.name,
    wake() {
      woken = true;
      nap?.abort();
    },
    async stop() {
      controller.abort();
      await loop;
      await options.drain?.();
    },
  };
}
