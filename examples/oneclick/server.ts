/**
 * An operator platform using Ferry's 1-Click flow (sign up and deposit in one step), against a
 * local Ferry:
 *
 *   FERRY_ADMIN_PASSWORD=choose-a-long-password npm start               # in one terminal
 *   FERRY_ADMIN_PASSWORD=choose-a-long-password npm run example:oneclick    # in another; open the URL it prints
 *
 * On start it sets a client up through Ferry's admin API — its 1-Click settings (this server's
 * redirect_uri, its callback URL `/api/{action}` and the Basic credentials Ferry must send) and a
 * new OAuth client secret — then serves the page with "Sign up and deposit" (operator.ts).
 *
 *   npm run example:oneclick -- --check
 *
 * plays the flow without a browser, against a client of its own, and exits 0 when it all worked
 * (check.ts).
 *
 * Settings: FERRY_URL (default http://127.0.0.1:3000), FERRY_ADMIN_PASSWORD (the platform admin's:
 * for the set-up), FERRY_CLIENT_ID (default demo), PORT (default 5175), OPERATOR_USERNAME and
 * OPERATOR_PASSWORD (what Ferry sends on the callbacks; default "ferry" and a random password).
 * Already set the client up yourself (docs/oneclick-api.md)? Give FERRY_CLIENT_SECRET and
 * OPERATOR_PASSWORD instead of FERRY_ADMIN_PASSWORD: nothing is changed on Ferry.
 * The guide: docs/oneclick-api.md.
 */
import { randomBytes } from "node:crypto";
import { runCheck } from "./check.ts";
import { OperatorPlatform, setUpClient } from "./operator.ts";

const ferryUrl = (process.env.FERRY_URL ?? "http://127.0.0.1:3000").replace(/\/$/, "");
const adminPassword = process.env.FERRY_ADMIN_PASSWORD;
const out = (text: string) => process.stderr.write(`oneclick example: ${text}\n`);

if (process.argv.includes("--check")) {
  if (!adminPassword) {
    out("set FERRY_ADMIN_PASSWORD to the platform admin's password (--check makes a client of its own)");
    process.exit(1);
  }
  await runCheck({ ferryUrl, adminPassword, port: Number(process.env.PORT ?? 0) });
  process.exit(0);
}

const port = Number(process.env.PORT ?? 5175);
const clientId = process.env.FERRY_CLIENT_ID ?? "demo";
const givenSecret = process.env.FERRY_CLIENT_SECRET;
const callbackAuth = {
  username: process.env.OPERATOR_USERNAME ?? "ferry",
  password: process.env.OPERATOR_PASSWORD ?? randomBytes(18).toString("base64url"),
};
if (givenSecret ? !process.env.OPERATOR_PASSWORD : !adminPassword) {
  out(
    givenSecret
      ? "with FERRY_CLIENT_SECRET, set OPERATOR_PASSWORD to the callback password the client was set up with"
      : "set FERRY_ADMIN_PASSWORD (the platform admin's) so this example can set the client up, or FERRY_CLIENT_SECRET and OPERATOR_PASSWORD if you did",
  );
  process.exit(1);
}

const publicUrl = `http://127.0.0.1:${port}`;
const platform = new OperatorPlatform({
  ferryUrl,
  clientId,
  clientSecret: givenSecret ?? "",
  callbackAuth,
  publicUrl,
});
try {
  await platform.listen(port);
} catch (error) {
  out(`cannot listen on port ${port}: ${(error as Error).message}`);
  process.exit(1);
}
if (!givenSecret) {
  try {
    platform.options.clientSecret = await setUpClient({
      ferryUrl,
      adminPassword: adminPassword ?? "",
      clientId,
      redirectUri: platform.redirectUri,
      callbackUrl: platform.callbackUrl,
      callbackAuth,
    });
  } catch (error) {
    out(`cannot set client ${clientId} up at ${ferryUrl}: ${(error as Error).message}`);
    await platform.close();
    process.exit(1);
  }
  out(`client ${clientId} set up: redirect_uri ${platform.redirectUri}, callbacks ${platform.callbackUrl}`);
}
out(`open ${publicUrl} (Ferry at ${ferryUrl}); every callback is printed below`);

const stop = () => platform.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
