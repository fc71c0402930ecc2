import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";

export interface Worker {
  readonly name: string;
  /** Stops the loop; resolves once the round in progress (if any) has finished. */
  stop(): Promise<void>;
}

/**
 * A small loop: run one round, wait, repeat. A round that did a full batch of work runs again at
 * once; an error is logged and the loop carries on after the interval.
 */
export function startWorker(options: {
  name: string;
  intervalMs: number;
  logger: Logger;
  /** Does one round; returns true when there may be more work right away. */
  round: () => Promise<boolean>;
}): Worker {
  const controller = new AbortController();
  const log = options.logger.child({ worker: options.name });
  const loop = (async () => {
    while (!controller.signal.aborted) {
      let more = false;
      try {
        more = await options.round();
      } catch (error) {
        log.error({ err: error }, "worker round failed");
      }
      if (!more) {
        await sleep(options.intervalMs, undefined, { signal: controller.signal }).catch(() => {});
      }
    }
  })();
  return {
    name: options.name,
    async stop() {
      controller.abort();
      await loop;
    },
  };
}
