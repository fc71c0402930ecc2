// The Pay-in flow as an end user plays it. Every call goes to this page's own server, which passes
// /api, /v2 and /v3 on to Ferry. What the page knows (token, card, offer, the answers shown) is kept
// in sessionStorage, so it is all still here when the browser comes back from the 3-D Secure page.

const $ = (id) => document.getElementById(id);
const value = (id) => $(id).value.trim();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const state = JSON.parse(sessionStorage.getItem("payin") ?? "{}");
state.steps ??= {};
const save = () => sessionStorage.setItem("payin", JSON.stringify(state));

/** Shows a step's outcome (done, failed or waiting) and the calls it made; kept across pages. */
function show(step, outcome, text) {
  state.steps[step] = { outcome, text };
  save();
  render(step);
}
function render(step) {
  const shown = state.steps[step];
  if (!shown) return;
  $(step).className = shown.outcome;
  $(`${step}-answer`).textContent = shown.text;
}

/** One call to Ferry (through this page's server): its answer and a printout of it. */
async function call(method, path, body) {
  const headers = {};
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { text };
  }
  const printed = `${method} ${path} → ${response.status}${json ? `\n${JSON.stringify(json, null, 2)}` : ""}`;
  return { status: response.status, ok: response.ok, body: json, printed };
}

/** Asks `path` every second until `done(answer)` (at most `seconds`), showing each answer. */
async function poll(step, before, path, done, seconds = 120) {
  for (let i = 0; i < seconds; i++) {
    const answer = await call("GET", path);
    const finished = answer.ok && done(answer.body);
    show(
      step,
      !answer.ok ? "failed" : finished ? "done" : "waiting",
      `${before}${answer.printed}${finished || !answer.ok ? "" : "\n… asking again every second"}`,
    );
    if (!answer.ok || finished) return answer;
    await sleep(1000);
  }
  return undefined;
}

// ——— 1. log in or register ———

function loggedIn(answer) {
  state.token = answer.body?.authorizationToken?.token;
  state.login = value("login-name");
  save();
  return Boolean(state.token);
}

$("log-in").onclick = async () => {
  state.token = undefined;
  const answer = await call("POST", "/api/v1/authorization", {
    login: value("login-name"),
    password: value("password"),
  });
  show("login", answer.ok && loggedIn(answer) ? "done" : "failed", answer.printed);
};

$("register").onclick = async () => {
  state.token = undefined;
  const login = value("login-name");
  const started = await call("POST", "/api/v1/registration", { login, role: "individual" });
  let printed = started.printed;
  if (started.ok) {
    // Sandbox only: a real installation sends the code by e-mail or SMS.
    const otp = await fetch(`/sandbox-otp?login=${encodeURIComponent(login)}`);
    const read = await otp.json();
    printed += `\n\nThe code, read from the sandbox outbox by this example's server:\n${JSON.stringify(read, null, 2)}`;
    if (read.otp) $("otp").value = read.otp;
  }
  show("login", started.ok ? "waiting" : "failed", `${printed}\n\nNow: Confirm registration.`);
};

$("confirm").onclick = async () => {
  const answer = await call("POST", "/api/v1/registration/confirm", {
    login: value("login-name"),
    otp: value("otp"),
    password: value("password"),
  });
  show("login", answer.ok && loggedIn(answer) ? "done" : "failed", answer.printed);
};

// ——— 2. profile: KYC_0 ———

$("save-profile").onclick = async () => {
  const saved = await call("PATCH", "/v2/customer/profile", {
    firstName: value("first-name"),
    lastName: value("last-name"),
    primaryCurrency: value("primary-currency"),
    residenceCountry: value("country"),
    residenceCity: value("city"),
    residenceStreet: value("street"),
    residenceZipCode: value("zip"),
    dateOfBirth: value("birth"),
  });
  if (!saved.ok) return show("profile", "failed", saved.printed);
  // A complete profile gives KYC_0 once the KYC provider has looked at it (the sandbox: about a second).
  await poll("profile", `${saved.printed}\n\n`, "/v2/customer/kyc/data", (kyc) => kyc.kycLevel !== null);
};

// ——— 3. identity check: KYC_1 ———

$("start-kyc").onclick = async () => {
  const started = await call("POST", "/v2/customer/kyc/start");
  if (!started.ok) return show("kyc", "failed", started.printed);
  // The check happens on the provider's page: open it, submit the documents there, come back.
  $("kyc-link").href = started.body.verificationUrl;
  $("kyc-link").hidden = false;
  const kyc = await poll(
    "kyc",
    `${started.printed}\n\nOpen the verification page (the link above) and submit your documents.\n\n`,
    "/v2/customer/kyc/data",
    (kyc) => kyc.kycLevel === "KYC_1" || kyc.kyc1ClientData?.status === "DENIED",
    600,
  );
  if (kyc?.body?.kycLevel !== "KYC_1") show("kyc", "failed", state.steps.kyc.text);
};

// ——— 4. card ———

$("add-card").onclick = async () => {
  const answer = await call("POST", "/v3/payin/card", {
    cardNumber: value("card-number").replaceAll(" ", ""),
    cardHolder: value("card-holder"),
    cardExpirationMonth: Number(value("card-month")),
    cardExpirationYear: Number(value("card-year")),
    billingAddress: {
      address: value("billing-address"),
      city: value("billing-city"),
      zip: value("billing-zip"),
      countryCode: value("billing-country"),
    },
  });
  if (answer.ok) state.cardId = answer.body.cardId;
  show("card", answer.ok ? "done" : "failed", answer.printed);
};

// ——— 5. rates ———

$("read-rates").onclick = async () => {
  const answer = await call("GET", "/v3/payin/data");
  let summary = "";
  if (answer.ok) {
    const { pairs, fees, limits } = answer.body;
    summary = `${pairs.map((p) => `1 ${p.currencyTo} = ${p.rate} ${p.currencyFrom}`).join("\n")}
fee: ${fees.rate} × the amount + ${fees.transactionFee}; limits: ${limits.minAmountFrom} to ${limits.maxAmountFrom}\n\n`;
  }
  show("rates", answer.ok ? "done" : "failed", `${summary}${answer.printed}`);
};

// ——— 6. offer, with the countdown of its 20 s ———

let countdown;
function startCountdown(offer) {
  clearInterval(countdown);
  const until = new Date(offer.expirationTime).getTime();
  const tick = () => {
    const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    $("countdown").textContent = left > 0 ? `holds for ${left} s` : "expired: make a new offer";
    if (left === 0) clearInterval(countdown);
  };
  tick();
  countdown = setInterval(tick, 250);
}

function offered(answer) {
  if (answer.ok) {
    state.offerId = answer.body.offerId;
    save();
    startCountdown(answer.body);
  }
  show("offer", answer.ok ? "done" : "failed", answer.printed);
}

const offerTerms = () => ({
  amount: value("amount"),
  fromCurrency: value("from"),
  toCurrency: value("to"),
  operation: "PAYIN",
});

$("make-offer").onclick = async () => {
  const address = value("wallet-address");
  offered(
    await call("POST", "/v3/payin/offer", {
      cardId: state.cardId,
      ...offerTerms(),
      ...(address ? { walletAddress: address } : {}),
    }),
  );
};

// Changing an open offer re-quotes it (a new rate, 20 s again); an expired or paid one is a 409.
$("update-offer").onclick = async () =>
  offered(await call("PUT", `/v3/payin/offer/${state.offerId}`, offerTerms()));

// ——— 7. pay, 3-D Secure ———

$("pay-offer").onclick = async () => {
  const answer = await call("POST", `/v3/payin/pay/${state.offerId}`, {
    cardCVV: value("cvv"),
    // Where the 3-D Secure page sends the browser back: this page, which then follows the payment.
    successUrl: `${location.origin}/?back=success`,
    failUrl: `${location.origin}/?back=fail`,
  });
  clearInterval(countdown);
  $("countdown").textContent = "";
  if (!answer.ok) return show("pay", "failed", answer.printed);
  if (answer.body.authLink) {
    show("pay", "waiting", `${answer.printed}\n\n3-D Secure: on to your bank's page…`);
    await sleep(1500);
    location.assign(answer.body.authLink);
    return;
  }
  const declined = answer.body.transactionStatusCode !== 0;
  show("pay", declined ? "failed" : "done", answer.printed);
  await follow();
};

// ——— 8. the payment's outcome and the crypto in the account ———

async function follow() {
  const status = await poll(
    "status",
    "",
    `/v3/payin/pay-callback?offerId=${state.offerId}`,
    (s) => s.status !== "PENDING",
  );
  if (!status?.ok) return;
  const s = status.body;
  if (s.status !== "SUCCESS") {
    $("result").textContent = `Payment failed: ${s.transactionStatus} (${s.transactionStatusCode})`;
    return;
  }
  const coins = await call("GET", "/api/v1/coins");
  const coin = coins.body?.coins?.find((c) => c.currency?.code === s.cryptoCurrency);
  const result = `Paid ${s.amount} ${s.currency}: you bought ${s.cryptoAmount} ${s.cryptoCurrency}${
    s.chainTxHash ? `, sent on the chain (${s.chainTxHash})` : ""
  }`;
  const account = coin ? `\nYour ${s.cryptoCurrency} account ${coin.serial}: ${coin.amount}` : "";
  state.result = `${result}${account}`;
  show("status", "done", `${state.steps.status.text}\n\n${coins.printed}`);
  $("result").textContent = state.result;
}

// ——— on load: what was shown before; back from 3-D Secure, follow the payment ———

$("start-over").onclick = () => {
  sessionStorage.removeItem("payin");
  location.assign("/");
};

for (const step of Object.keys(state.steps)) render(step);
$("login-name").value = state.login ?? `marie-${Date.now().toString(36)}@example.com`;
if (state.result) $("result").textContent = state.result;

const back = new URLSearchParams(location.search).get("back");
if (back && state.offerId && !state.result) {
  const pay = state.steps.pay?.text ?? "";
  show(
    "pay",
    back === "success" ? "done" : "failed",
    `${pay.replace(/\n\n3-D Secure: on to your bank's page….*$/s, "")}\n\n3-D Secure done: back on ${
      back === "success" ? "successUrl" : "failUrl"
    } (${location.href})`,
  );
  follow();
}
