/**
 * The Wallet API's seed flow against a local Ferry, step by step, with plain `fetch`:
 *
 *   FERRY_ADMIN_PASSWORD=choose-a-long-password npm start            # in one terminal
 *   FERRY_ADMIN_PASSWORD=choose-a-long-password npm run example:wallet   # in another
 *
 * It creates a client of its own through the admin API (so it can run again and again), its first
 * administrator, the set-up (currency, issuer, bank, commission profiles), staff, two customers
 * registered with a one-time code from the sandbox outbox, their profiles (KYC tier 1), accounts,
 * a staff-recorded top-up, a transfer with its commission, a withdrawal the accountant accepts, a
 * template and its execution, a smart card, an AML review, and the business processes.
 * Every step prints its request, the status and the values it checks; any unexpected answer (status
 * or value) exits with status 1.
 * Settings: FERRY_URL (default http://127.0.0.1:3000), FERRY_ADMIN_PASSWORD (the platform admin's).
 * The guide that explains each step: docs/wallet-api.md.
 */

const ferryUrl = (process.env.FERRY_URL ?? "http://127.0.0.1:3000").replace(/\/$/, "");
const adminPassword = process.env.FERRY_ADMIN_PASSWORD;
if (!adminPassword) {
  process.stderr.write(
    "wallet example: set FERRY_ADMIN_PASSWORD to the platform admin's password (printed on Ferry's first start)\n",
  );
  process.exit(1);
}
const adminBasic = `Basic ${Buffer.from(`admin:${adminPassword}`).toString("base64")}`;

const run = Date.now().toString(36);
const clientId = `wallet-example-${run}`;
const PASSWORD = "Str0ng#Pass";

// biome-ignore lint/suspicious/noExplicitAny: the answers are read loosely; each value the flow relies on is checked
type Json = Record<string, any>;

interface Call {
  method?: string;
  body?: unknown;
  /** An access token (Authorization: Bearer), or "admin" for the platform admin's HTTP Basic. */
  as?: string;
  headers?: Record<string, string>;
  /** The status this step expects (default 200). */
  expect?: number;
  /** Not a step of its own: print nothing unless it fails. */
  quiet?: boolean;
}

let stepNumber = 0;

function fail(message: string): never {
  process.stderr.write(`\n✗ ${message}\n`);
  process.exit(1);
}

/** One request to Ferry: prints it and its answer; exits when the status is not the expected one. */
async function call(
  title: string,
  path: string,
  options: Call = {},
): Promise<{ body: Json; headers: Headers }> {
  const method = options.method ?? (options.body === undefined ? "GET" : "POST");
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.as === "admin") headers.authorization = adminBasic;
  else if (options.as) headers.authorization = `Bearer ${options.as}`;
  let response: Response;
  try {
    response = await fetch(`${ferryUrl}${path}`, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
  } catch (error) {
    fail(`cannot reach Ferry at ${ferryUrl}: ${(error as Error).message}`);
  }
  const text = await response.text();
  let body: Json = {};
  try {
    if (text) body = JSON.parse(text) as Json;
  } catch {
    fail(`${title}: ${method} ${path} → ${response.status}, not JSON: ${text.slice(0, 200)}`);
  }
  const expected = options.expect ?? 200;
  if (!options.quiet)
    process.stdout.write(`\n${++stepNumber}. ${title}\n   ${method} ${path} → ${response.status}\n`);
  if (response.status !== expected)
    fail(
      `${title}: ${method} ${path}: expected ${expected}, got ${response.status}: ${JSON.stringify(body, null, 2)}`,
    );
  return { body, headers: response.headers };
}

/** Prints a result line; exits when `actual` differs from `expected`. */
function check(label: string, actual: unknown, expected: unknown) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${label}: expected ${e}, got ${a}`);
  process.stdout.write(`   ${label}: ${a}\n`);
}

function show(label: string, value: unknown) {
  process.stdout.write(`   ${label}: ${typeof value === "string" ? value : JSON.stringify(value)}\n`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Asks `probe` again every 500 ms until it answers `expected` (at most `seconds`). */
async function waitFor<T>(label: string, probe: () => Promise<T>, expected: T, seconds = 20): Promise<void> {
  const until = Date.now() + seconds * 1000;
  let last: T = await probe();
  while (JSON.stringify(last) !== JSON.stringify(expected) && Date.now() < until) {
    await sleep(500);
    last = await probe();
  }
  check(label, last, expected);
}

const pre = { "x-client-id": clientId }; // calls made before there is a token name the client

async function logIn(login: string, password: string): Promise<string> {
  const { body } = await call(`${login} logs in`, "/api/v1/authorization", {
    body: { login, password },
    headers: pre,
  });
  check("action", body.action, "TOKEN_CREATED");
  show("role", body.members[0].role);
  return body.authorizationToken.token;
}

/** The newest one-time code the sandbox notifier sent to `login` (the platform admin reads the outbox). */
async function lastOtp(login: string): Promise<string> {
  const { body } = await call(
    `The sandbox outbox: the code sent to ${login}`,
    `/sandbox/outbox?to=${encodeURIComponent(login)}&clientId=${clientId}`,
    { as: "admin" },
  );
  const record = body.records.find((r: Json) => r.otp);
  if (!record) fail(`no code in the outbox for ${login}`);
  show(record.kind, record.otp);
  return record.otp;
}

async function register(login: string): Promise<{ token: string; userId: string }> {
  const started = await call(`${login} registers`, "/api/v1/registration", {
    body: { login, role: "individual" },
    headers: pre,
  });
  check("action", started.body.action, "OTP_SENT");
  const otp = await lastOtp(login);
  const { body } = await call(
    `${login} confirms with the code and a password`,
    "/api/v1/registration/confirm",
    {
      body: { login, otp, password: PASSWORD },
      headers: pre,
    },
  );
  check("action", body.action, "TOKEN_CREATED");
  return { token: body.authorizationToken.token, userId: body.members[0].user.id };
}

async function balance(token: string, serial: string) {
  const { body } = await call(`Balances of ${serial}`, "/api/v1/coins", { as: token, quiet: true });
  const coin = body.coins.find((c: Json) => c.serial === serial);
  if (!coin) fail(`no account ${serial} in GET /api/v1/coins`);
  return { amount: coin.amount, available: coin.availableAmount, held: coin.heldAmount };
}

process.stdout.write(`Wallet API example against ${ferryUrl} (client ${clientId})\n`);

// ——— the platform admin: a client and its first administrator ———

const created = await call("The platform admin creates a client", "/admin/clients", {
  as: "admin",
  body: {
    clientId,
    name: `Wallet example ${run}`,
    // This example makes many operations within a minute: the velocity rule would hold the sixth.
    settings: { monitoring: { velocityCount: 50 } },
  },
  expect: 201,
});
check("mode", created.body.mode, "sandbox");

const adminLogin = `admin@${clientId}.example`;
const firstAdmin = await call(
  "The platform admin makes its first administrator",
  `/admin/clients/${clientId}/staff`,
  {
    as: "admin",
    body: { login: adminLogin, role: "administrator" },
    expect: 201,
  },
);
show("generated password (shown this once)", firstAdmin.body.password);
const admin = await logIn(adminLogin, firstAdmin.body.password);

// ——— set-up ———

const usd = await call("The administrator adds USD", "/api/v1/currencies", {
  as: admin,
  body: { code: "USD", digitalCode: "840", symbol: "$", name: "US dollar", fraction: 2 },
  expect: 201,
});
check("fraction", usd.body.fraction, 2);
const issuer = await call("… an issuer of USD (account serials start with 44)", "/api/v1/issuers", {
  as: admin,
  body: { currencyCode: "USD", name: "Example USD issuer", snPrefix: "44" },
  expect: 201,
});
show("issuer sn", issuer.body.sn);
const bank = await call("… a bank in the catalog", "/api/v1/bank-catalog", {
  as: admin,
  body: { name: "Commerzbank", bic: "COBADEFFXXX", swift: "COBADEFFXXX", city: "Frankfurt am Main" },
  expect: 201,
});
const bankId: string = bank.body.bankId;
show("bankId", bankId);
await call(
  "… a TRANSFER commission: 0.25 + 1 %, shared between sender and recipient",
  "/api/v1/commission-profiles",
  {
    as: admin,
    body: {
      operation: "TRANSFER",
      currency: "USD",
      feeDirection: "SHARED",
      rules: [
        {
          beginAmount: "0.01",
          endAmount: "1000.00",
          type: "fixed_and_percent",
          valueFixed: "0.25",
          valuePercent: "1",
        },
        { beginAmount: "1000.01", type: "percent", valuePercent: "0.5" },
      ],
    },
    expect: 201,
  },
);
await call("… a WITHDRAW_BANK commission: 1.50 on top", "/api/v1/commission-profiles", {
  as: admin,
  body: {
    operation: "WITHDRAW_BANK",
    currency: "USD",
    feeDirection: "OUT",
    rules: [{ beginAmount: "0", type: "fixed", valueFixed: "1.50" }],
  },
  expect: 201,
});

const accountantLogin = `accountant@${clientId}.example`;
await call("The administrator makes an accountant", "/api/v1/users", {
  as: admin,
  body: { login: accountantLogin, role: "accountant", password: PASSWORD },
  expect: 201,
});
const accountant = await logIn(accountantLogin, PASSWORD);
const officerLogin = `compliance@${clientId}.example`;
await call("… and a compliance officer", "/api/v1/users", {
  as: admin,
  body: { login: officerLogin, role: "compliance_officer", password: PASSWORD },
  expect: 201,
});
const officer = await logIn(officerLogin, PASSWORD);

// ——— customers ———

const anna = await register(`anna@${clientId}.example`);
const ben = await register(`ben@${clientId}.example`);

for (const [who, person, birth] of [
  ["Anna", anna, "1990-04-12"],
  ["Ben", ben, "1988-09-30"],
] as const) {
  const { body } = await call(`${who} gives their profile (KYC tier 1 information)`, "/api/v1/profile", {
    method: "PATCH",
    as: person.token,
    body: {
      name: { firstName: who, lastName: "Example" },
      emails: [`${who.toLowerCase()}@${clientId}.example`],
      addresses: [{ street: "Torstraße 1", city: "Berlin", postalCode: "10119", country: "DE" }],
      dateOfBirth: birth,
    },
  });
  show("tier now", body.tier);
}
// The sandbox KYC decides in the background (about a second): an unchanged profile answers the tier.
for (const [who, person] of [
  ["Anna", anna],
  ["Ben", ben],
] as const) {
  await waitFor(
    `${who}'s tier`,
    async () => {
      const response = await fetch(`${ferryUrl}/api/v1/profile`, {
        method: "PATCH",
        headers: { authorization: `Bearer ${person.token}`, "content-type": "application/json" },
        body: "{}",
      });
      if (response.status !== 200)
        fail(`PATCH /api/v1/profile → ${response.status}: ${await response.text()}`);
      const tier = ((await response.json()) as { tier: number }).tier;
      return tier >= 1 ? "≥ 1" : String(tier);
    },
    "≥ 1",
  );
}

const annaCoin = await call("Anna opens a USD account", "/api/v1/coins", {
  as: anna.token,
  body: { name: "Everyday", currencyCode: "USD" },
  expect: 201,
});
const annaSerial: string = annaCoin.body.coin.serial;
show("serial", annaSerial);
const benCoin = await call("Ben opens a USD account", "/api/v1/coins", {
  as: ben.token,
  body: { name: "Main", currencyCode: "USD" },
  expect: 201,
});
const benSerial: string = benCoin.body.coin.serial;
show("serial", benSerial);
if (!/^44[0-9]{16}$/.test(annaSerial))
  fail(`a serial under the issuer's prefix 44 was expected: ${annaSerial}`);

// ——— money ———

const topUpBody = {
  coinSerial: annaSerial,
  amount: "100.00",
  bankId,
  iban: "DE89370400440532013000",
  fullName: "Anna Example",
};
const topUpKey = { "idempotency-key": `topup-${run}` };
const topUp = await call(
  "The accountant records Anna's bank payment of 100.00",
  "/api/v1/bank-top-ups/with-bank",
  {
    as: accountant,
    body: topUpBody,
    headers: topUpKey,
  },
);
check("status", topUp.body.status, "processed");
const replay = await call("… the same Idempotency-Key again (a retry)", "/api/v1/bank-top-ups/with-bank", {
  as: accountant,
  body: topUpBody,
  headers: topUpKey,
});
check("Idempotent-Replayed", replay.headers.get("idempotent-replayed"), "true");
check("the same requestIdentifier", replay.body.requestIdentifier, topUp.body.requestIdentifier);
check("Anna", await balance(anna.token, annaSerial), { amount: "100.00", available: "100.00", held: "0.00" });

const transfer = await call("Anna sends Ben 30.00", "/api/v1/transfers", {
  as: anna.token,
  body: {
    paymentTool: { type: "COIN", srcValue: annaSerial, destValue: benSerial },
    amount: "30.00",
    description: "Concert tickets",
  },
});
check("status", transfer.body.process.status, "processed");
const transferId: string = transfer.body.process.id;
const transferProcess = await call(
  "The transfer as a business process",
  `/api/v1/business-processes/${transferId}`,
  {
    as: anna.token,
  },
);
// fee = 0.25 + 1 % of 30.00 = 0.55; shared: Anna pays 0.28 (the odd cent), Ben 0.27.
check(
  "amount / commission / senderAmount / netAmount",
  [
    transferProcess.body.process.amount,
    transferProcess.body.process.commission,
    transferProcess.body.process.senderAmount,
    transferProcess.body.process.netAmount,
  ],
  ["30.00", "0.55", "30.28", "29.73"],
);
check("Anna", (await balance(anna.token, annaSerial)).amount, "69.72");
check("Ben", (await balance(ben.token, benSerial)).amount, "29.73");

const withdrawalQuote = await call("Anna prices a 40.00 withdrawal", "/api/v1/bank-withdrawals/calculate", {
  as: anna.token,
  body: { coinSerial: annaSerial, amount: "40.00" },
});
check("senderAmountPush", withdrawalQuote.body.senderAmountPush, "41.50");
const withdrawal = await call(
  "Anna asks to withdraw 40.00 to her bank account",
  "/api/v1/bank-withdrawals/with-bank",
  {
    as: anna.token,
    body: {
      coinSerial: annaSerial,
      amount: "40.00",
      bankDetails: { fullName: "Anna Example", iban: "DE89370400440532013000", bic: "COBADEFFXXX" },
      description: "Rent",
    },
    headers: { "idempotency-key": `withdrawal-${run}` },
  },
);
check("status", withdrawal.body.status, "pending");
const withdrawalNumber: number = withdrawal.body.requestIdentifier;
check("Anna (amount + fee held)", await balance(anna.token, annaSerial), {
  amount: "69.72",
  available: "28.22",
  held: "41.50",
});
await call("Anna cannot accept her own request", `/api/v1/bank-withdrawals/${withdrawalNumber}/accept`, {
  method: "POST",
  as: anna.token,
  expect: 403,
});
const accepted = await call(
  "The accountant accepts it",
  `/api/v1/bank-withdrawals/${withdrawalNumber}/accept`,
  {
    method: "POST",
    as: accountant,
  },
);
check("status", accepted.body.status, "processed");
await waitFor("Anna once the sandbox bank confirmed the payout", () => balance(anna.token, annaSerial), {
  amount: "28.22",
  available: "28.22",
  held: "0.00",
});

const saved = await call(
  "Anna saves the transfer to Ben as a template",
  `/api/v1/templates/transfer/operation/${transferId}`,
  {
    as: anna.token,
    body: { name: "Ben", description: "Share of the concert" },
    expect: 201,
  },
);
const templateId: string = saved.body.template.id;
check("recipientCoin", saved.body.template.recipientCoin, benSerial);
const templates = await call("Anna's templates", "/api/v1/templates/transfer/view", {
  as: anna.token,
  body: { pageNumber: 0, pageSize: 10, filter: { paymentToolType: "COIN" } },
});
check("totalRecords", templates.body.totalRecords, 1);
const templateQuote = await call("… priced for 10.01", `/api/v1/templates/transfer/${templateId}/calculate`, {
  as: anna.token,
  body: { amount: "10.01" },
});
// 1 % of 10.01 = 0.1001 → 0.10 (half up); + 0.25 = 0.35; Anna pays 0.18, Ben 0.17.
check(
  "sender / recipient / commission",
  [
    templateQuote.body.senderAmountPush,
    templateQuote.body.recipientAmountPush,
    templateQuote.body.commissionAmountPush,
  ],
  ["10.19", "9.84", "0.35"],
);
const executed = await call("… and executed", `/api/v1/templates/transfer/${templateId}/execute`, {
  as: anna.token,
  body: { amount: "10.01" },
  headers: { "idempotency-key": `template-${run}` },
});
check("businessProcessStatus", executed.body.businessProcessStatus, "processed");
check("Anna", (await balance(anna.token, annaSerial)).amount, "18.03");

const card = await call("Ben gets a smart card on his account", "/api/v1/smart-cards/my", {
  as: ben.token,
  body: { name: "Travel card", associatedCoinSerial: benSerial },
  expect: 201,
});
const cardNumber: string = card.body.smartCard.cardNumber;
show("card number (shown this once)", cardNumber);
if (!cardNumber.startsWith("990001"))
  fail(`a smart card number in the 990001 range was expected: ${cardNumber}`);
const cards = await call("Ben's cards (numbers masked)", "/api/v1/smart-cards/my", { as: ben.token });
check("cardNumber", cards.body.records[0].cardNumber, `990001******${cardNumber.slice(-4)}`);
const toCard = await call("Anna sends 5.00 to Ben's smart card", "/api/v1/transfers", {
  as: anna.token,
  body: { paymentTool: { type: "SMART_CARD", srcValue: annaSerial, destValue: cardNumber }, amount: "5.00" },
});
check("status", toCard.body.process.status, "processed");
// fee = 0.25 + 0.05 = 0.30, 0.15 each: Anna 18.03 − 5.15, Ben 29.73 + 9.84 + 4.85.
check("Anna", (await balance(anna.token, annaSerial)).amount, "12.88");
check("Ben", (await balance(ben.token, benSerial)).amount, "44.42");

// ——— an AML review ———

await call("The platform admin makes the AML check hold amounts from 10 USD", `/admin/clients/${clientId}`, {
  method: "PATCH",
  as: "admin",
  body: { settings: { monitoring: { velocityCount: 50, singleAmountReviewUsd: 10 } } },
});
const held = await call("Ben asks to withdraw 10.00", "/api/v1/bank-withdrawals/with-bank", {
  as: ben.token,
  body: {
    coinSerial: benSerial,
    amount: "10.00",
    bankDetails: { fullName: "Ben Example", iban: "FR1420041010050500013M02606" },
  },
});
check("status", held.body.status, "waiting_for_approval");
const heldNumber: number = held.body.requestIdentifier;
await call("The accountant cannot accept it yet", `/api/v1/bank-withdrawals/${heldNumber}/accept`, {
  method: "POST",
  as: accountant,
  expect: 409,
});
const cleared = await call("The compliance officer clears it", `/api/v1/aml-reviews/${heldNumber}/clear`, {
  method: "POST",
  as: officer,
});
check("status", cleared.body.status, "pending");
const acceptedAfterReview = await call(
  "Now the accountant accepts it",
  `/api/v1/bank-withdrawals/${heldNumber}/accept`,
  {
    method: "POST",
    as: accountant,
  },
);
check("status", acceptedAfterReview.body.status, "processed");

// ——— business processes ———

const annaProcesses = await call("Anna's business processes", "/api/v1/business-processes?pageSize=20", {
  as: anna.token,
});
check(
  "types, newest first",
  annaProcesses.body.records.map((p: Json) => `${p.type}:${p.status}`),
  [
    "TRANSFER:processed",
    "TRANSFER:processed",
    "WITHDRAW_BANK:processed",
    "TRANSFER:processed",
    "TOP_UP_BANK:processed",
  ],
);
const all = await call("All of the client's processes (the accountant)", "/api/v1/business-processes", {
  as: accountant,
});
check("totalRecords", all.body.totalRecords, 6);

process.stdout.write("\n✓ The Wallet API seed flow passed end to end.\n");
