import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.ts";

describe("configuration", () => {
  it("has embedded defaults", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: "127.0.0.1",
      databaseUrl: undefined,
      logLevel: "info",
      workersEnabled: true,
    });
    expect(config.dataDir).toMatch(/\/data$/);
    expect(config.publicUrl).toBe("http://127.0.0.1:3000");
    expect(config.ledgerBatchesInFlight).toBe(1);
  });

  it("reads the environment", () => {
    const config = loadConfig({
      PORT: "8080",
      HOST: "0.0.0.0",
      DATABASE_URL: "postgres://ferry@db:5432/ferry",
      FERRY_ADMIN_PASSWORD: "a-long-enough-password",
      LOG_LEVEL: "warn",
      FERRY_WORKERS: "false",
    });
    expect(config).toMatchObject({
      port: 8080,
      databaseUrl: "postgres://ferry@db:5432/ferry",
      logLevel: "warn",
      workersEnabled: false,
    });
    expect(config.publicUrl).toBe("http://localhost:8080");
    expect(config.ledgerBatchesInFlight).toBe(2);
  });

  it("bounds the step runner: concurrency, a per-client cap, a call deadline no callback exceeds", () => {
    expect(loadConfig({})).toMatchObject({
      stepTimeoutMs: 60_000,
      stepConcurrency: 32,
      stepConcurrencyPerClient: 4,
    });
    expect(loadConfig({ FERRY_STEP_CONCURRENCY: "8", FERRY_STEP_CONCURRENCY_PER_CLIENT: "2" })).toMatchObject(
      { stepConcurrency: 8, stepConcurrencyPerClient: 2 },
    );
    expect(() =>
      loadConfig({ FERRY_STEP_TIMEOUT_MS: "5000", FERRY_ONECLICK_CALLBACK_TIMEOUT_MS: "10000" }),
    ).toThrow(/FERRY_ONECLICK_CALLBACK_TIMEOUT_MS must not exceed FERRY_STEP_TIMEOUT_MS \(5000\)/);
    expect(() => loadConfig({ FERRY_STEP_CONCURRENCY_PER_CLIENT: "0" })).toThrow(ConfigError);
  });

  it("names the variable that is wrong, in one line", () => {
    const cases: [Record<string, string>, string][] = [
      [{ PORT: "abc" }, "PORT"],
      [{ PORT: "70000" }, "PORT"],
      [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL"],
      [{ FERRY_ADMIN_PASSWORD: "short" }, "FERRY_ADMIN_PASSWORD"],
      [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
      [{ FERRY_WORKERS: "maybe" }, "FERRY_WORKERS"],
      [{ FERRY_PUBLIC_URL: "ftp://x" }, "FERRY_PUBLIC_URL"],
    ];
    for (const [env, variable] of cases) {
      let caught: unknown;
      try {
        loadConfig(env);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).variable).toBe(variable);
      expect((caught as ConfigError).message).toMatch(new RegExp(`^invalid configuration: ${variable} `));
      expect((caught as ConfigError).message).not.toContain("\n");
    }
  });

  it("does not echo a bad password back", () => {
    expect(() => loadConfig({ FERRY_ADMIN_PASSWORD: "hunter2" })).toThrow(/^(?!.*hunter2)/);
  });
});
