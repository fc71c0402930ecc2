import { describe, expect, it } from "vitest";
import { cardBrand, cardExpired, ibanValid, luhnValid } from "./validation.ts";

describe("card and bank checks", () => {
  it("applies the Luhn check", () => {
    for (const ok of [
      "4242424242424242",
      "5555555555554444",
      "4000000000003220",
      "4000000000000002",
      "4000000000009995",
      "4000000000000119",
    ]) {
      expect(luhnValid(ok), ok).toBe(true);
    }
    for (const bad of ["4242424242424241", "1234", "42424242424242a2", ""])
      expect(luhnValid(bad), bad).toBe(false);
  });

  it("knows brands and expiry", () => {
    expect(cardBrand("4242424242424242")).toBe("VISA");
    expect(cardBrand("5555555555554444")).toBe("MASTERCARD");
    expect(cardBrand("2223003122003222")).toBe("MASTERCARD");
    expect(cardBrand("378282246310005")).toBe("AMEX");
    const now = new Date("2026-11-21T00:00:00Z");
    expect(cardExpired(11, 2026, now)).toBe(false);
    expect(cardExpired(10, 2026, now)).toBe(true);
    expect(cardExpired(1, 27, now)).toBe(false);
  });

  it("checks IBANs by mod 97", () => {
    for (const ok of [
      "DE89370400440532013000",
      "GB82 WEST 1234 5698 7654 32",
      "fr1420041010050500013m02606",
      "NL91ABNA0417164300",
    ]) {
      expect(ibanValid(ok), ok).toBe(true);
    }
    for (const bad of ["DE89370400440532013001", "GB82WEST12345698765433", "XX00", "DE89-3704"])
      expect(ibanValid(bad), bad).toBe(false);
  });
});
