import type { Db } from "../src/db/database.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import type { Account } from "../src/modules/ledger/types.ts";

let funding = 0;

/** A new user wallet holding `amount` minor units, funded from the client's issuing account. */
export async function openFundedWallet(
  db: Db,
  options: { clientId: string; currency: string; amount: bigint; ownerId?: string },
): Promise<{ issuing: Account; wallet: Account }> {
  const { clientId, currency, amount } = options;
  const issuing = await ledger.openAccount(db, { clientId, currency, kind: "ISSUING" });
  const wallet = await ledger.openAccount(db, {
    clientId,
    currency,
    kind: "USER_WALLET",
    ownerId: options.ownerId ?? "owner",
  });
  if (amount > 0n) {
    const [result] = await ledger.submitBatch(db, [
      {
        clientId,
        legs: [
          {
            type: "SINGLE",
            id: `fund-${wallet.id}-${++funding}`,
            debitAccountId: issuing.id,
            creditAccountId: wallet.id,
            amount,
            currency,
          },
        ],
      },
    ]);
    if (!result?.ok) throw new Error(`funding failed: ${JSON.stringify(result)}`);
  }
  return { issuing, wallet };
}
