import { Writable } from "node:stream";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { loggerOptions, redactUrl } from "./logging.ts";

describe("log redaction", () => {
  it("never writes secrets or PII, at any of the first levels of a logged object", () => {
    const lines: string[] = [];
    const logger = pino(
      loggerOptions("info"),
      new Writable({
        write(chunk, _e, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    logger.info(
      {
        password: "pw-top-secret",
        body: {
          cardNumber: "4242424242424242",
          cvv: "123",
          firstName: "Ada",
          iban: "DE89370400440532013000",
        },
        request: {
          headers: { authorization: "Basic c2VjcmV0", "x-signature": "sig-secret" },
          user: { dateOfBirth: "1990-01-01" },
        },
        amount: "10.00",
      },
      "something happened",
    );
    const line = lines.join("");
    for (const secret of [
      "pw-top-secret",
      "4242424242424242",
      '123"',
      "Ada",
      "DE89370400440532013000",
      "c2VjcmV0",
      "sig-secret",
      "1990-01-01",
    ]) {
      expect(line).not.toContain(secret);
    }
    expect(line).toContain("[REDACTED]");
    expect(line).toContain('"amount":"10.00"');
  });

  it("masks sensitive query parameters in logged URLs", () => {
    expect(redactUrl("/oauth/check_token?token=abc.def&x=1")).toBe(
      "/oauth/check_token?token=%5BREDACTED%5D&x=1",
    );
    expect(redactUrl("/v1/users?page=0")).toBe("/v1/users?page=0");
  });
});
