// End-to-end tests of the console in a real headless Chromium (Debian's
// /usr/bin/chromium), driven by playwright-core. Run against a live
// `latchkey serve --demo`:
//
//   LATCHKEY_CONSOLE_URL=http://127.0.0.1:8080 LATCHKEY_ADMIN_PASSWORD=… \
//     node --test tests/browser/console.test.mjs
//
// crates/app/tests/console_browser.rs starts the server and runs this file
// as part of `cargo test --workspace`. Screenshots of every main page go
// to LATCHKEY_SCREENSHOTS (default target/console-screenshots).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.LATCHKEY_CONSOLE_URL || "http://127.0.0.1:8080").replace(/\/$/, "");
const ADMIN_PASSWORD = process.env.LATCHKEY_ADMIN_PASSWORD;
const SHOTS = process.env.LATCHKEY_SCREENSHOTS || path.join(here, "..", "..", "target", "console-screenshots");
const CHROMIUM = process.env.LATCHKEY_CHROMIUM || "/usr/bin/chromium";
// The demo domain's resource server (`serve --demo`).
const DEMO_READ = "https://api.demo.latchkey/read";

/** The section navigation in the page header. */
const nav = () => page.getByRole("navigation", { name: "Sections" });

// Unique names, so the file can run again against the same server.
const RUN = Date.now().toString(36);
const USER = { name: `browser.tester.${RUN}`, password: "a long browser-test password" };
const APP = { name: `Browser App ${RUN}`, clientId: `browser-app-${RUN}` };
const GROUP = { name: `Browser testers ${RUN}`, renamed: `Browser team ${RUN}` };

let browser;
let page;

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** No horizontal scrolling: the page is no wider than the window. */
async function assertNoHorizontalScroll(what) {
  const [scroll, client] = await page.evaluate(() => [
    document.documentElement.scrollWidth,
    document.documentElement.clientWidth,
  ]);
  assert.ok(scroll <= client, `${what}: ${scroll}px of content in a ${client}px window`);
}

async function signIn(username, password) {
  await page.goto(`${BASE}/console/signin`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function signOut() {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/console\/signin/);
}

describe("the Latchkey console in Chromium", () => {
  before(async () => {
    assert.ok(ADMIN_PASSWORD, "LATCHKEY_ADMIN_PASSWORD must name the admin's password");
    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Root (CI) cannot use Chromium's sandbox.
      args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    // The copy buttons write to the clipboard; the test reads it back.
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
    page = await context.newPage();
    page.setDefaultTimeout(7000);
  });

  after(async () => {
    await browser?.close();
  });

  it("signs in as admin with the keyboard alone", async () => {
    await page.goto(`${BASE}/console/signin`);
    await shot("01-sign-in");
    await assertNoHorizontalScroll("sign-in");
    // Focus starts in the username field; Tab reaches the password and
    // the button, Enter submits.
    await page.keyboard.type("admin");
    await page.keyboard.press("Tab");
    await page.keyboard.type("not the password");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#signin-error");
    await shot("02-sign-in-error");
    await page.getByLabel("Password").fill(ADMIN_PASSWORD);
    await page.getByLabel("Password").press("Enter");
    await page.waitForURL(`${BASE}/console/users`);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Users");
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === "latchkey_console");
    assert.ok(session, "a session cookie");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    assert.equal(session.path, "/console");
    await shot("03-users");
    await assertNoHorizontalScroll("users");
  });

  it("creates a user, then locks (after confirming) and unlocks them", async () => {
    await page.getByRole("link", { name: "Create user" }).click();
    await page.getByRole("button", { name: "Create user" }).click();
    // Server-side validation, beside the field.
    await page.waitForSelector("#username-error");
    await shot("04-create-user-errors");
    await page.getByLabel("Username").fill(USER.name);
    await page.getByLabel("Given name").fill("Browser");
    await page.getByLabel("Family name").fill("Tester");
    await page.getByLabel("Email").fill(`${USER.name}@example.com`);
    await page.getByLabel("Password").fill(USER.password);
    await page.getByRole("button", { name: "Create user" }).click();
    await page.waitForURL(/\/console\/users\/[0-9a-f-]+\?done=created/);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), USER.name);
    await shot("05-user");
    await assertNoHorizontalScroll("user");

    await page.getByRole("button", { name: "Lock" }).click();
    await page.getByRole("heading", { name: "Lock this user?" }).waitFor();
    await shot("06-confirm-lock");
    await page.getByRole("button", { name: "Lock user" }).click();
    await page.waitForURL(/done=locked/);
    assert.ok(await page.locator(".badge", { hasText: "Locked" }).first().isVisible());
    await page.getByRole("button", { name: "Unlock" }).click();
    await page.waitForURL(/done=unlocked/);
    assert.equal(await page.locator(".badge", { hasText: "Locked" }).count(), 0);

    // The list finds them by search.
    await nav().getByRole("link", { name: "Users", exact: true }).click();
    await page.getByLabel("Search users").fill(`${USER.name}@`);
    await page.getByRole("button", { name: "Search" }).click();
    assert.ok(await page.getByRole("link", { name: USER.name }).isVisible());
  });

  it("creates a Trusted Application whose shown secret gets a token with the password grant", async () => {
    await nav().getByRole("link", { name: "Applications" }).click();
    await shot("07-applications");
    await page.getByRole("link", { name: "Create application" }).click();
    await page.getByLabel("Name").fill(APP.name);
    await page.getByLabel(/^Trusted/).check();
    await page.getByLabel("Resource Owner (password)").check();
    await page.getByLabel("Redirect URIs").fill("https://browser-app.example.com/callback");
    await page.getByLabel(`Demo API — read`).check();
    await shot("08-create-application");
    await assertNoHorizontalScroll("create application");
    await page.getByRole("button", { name: "Create application" }).click();
    await page.getByRole("heading", { name: "Application created" }).waitFor();
    const clientId = (await page.locator("#client-id").textContent()).trim();
    const secret = (await page.locator("#client-secret").textContent()).trim();
    const curl = (await page.locator("#curl-command").textContent()).trim();
    assert.equal(clientId, APP.clientId);
    assert.equal(secret.length, 43);
    assert.match(curl, /^curl -i -H 'Authorization: Basic [A-Za-z0-9+/=]+' -H 'Content-Type: application\/x-www-form-urlencoded;charset=UTF-8' --request POST \S+\/oauth2\/v1\/token -d 'grant_type=password&username=USERNAME&password=PASSWORD&scope=/);
    await shot("09-application-secret");
    await assertNoHorizontalScroll("application secret");

    // The copy button puts the secret on the clipboard and says so.
    const copy = page.getByRole("button", { name: "Copy secret" });
    await copy.click();
    await page.getByRole("button", { name: "Copied" }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);

    // Over HTTP, as the application itself would.
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString("base64");
    const response = await fetch(`${BASE}/oauth2/v1/token`, {
      method: "POST",
      headers: {
        Authorization: `Basic ${basic}`,
        "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
      },
      body: new URLSearchParams({ grant_type: "password", username: USER.name, password: USER.password, scope: DEMO_READ }),
    });
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(body.token_type, "Bearer");
    assert.ok(body.access_token.split(".").length === 3, "a JWT");

    await page.getByRole("link", { name: "Done" }).click();
    await shot("10-application");

    // Edit it: a shorter access token lifetime, shown on its page after.
    await page.getByRole("link", { name: "Edit" }).click();
    await page.getByRole("heading", { name: `Edit ${APP.name}` }).waitFor();
    assert.equal(await page.getByLabel("Access token lifetime").inputValue(), "1h");
    await page.getByLabel("Access token lifetime").fill("15m");
    await shot("10b-edit-application");
    await assertNoHorizontalScroll("edit application");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.waitForURL(/\/console\/apps\/[0-9a-f-]+\?done=saved/);
    assert.ok(await page.getByText("15m", { exact: true }).isVisible());
  });

  it("shows resource servers, signing keys and the audit trail", async () => {
    await nav().getByRole("link", { name: "Resource servers" }).click();
    assert.ok(await page.getByText("https://api.demo.latchkey/read").first().isVisible());
    await shot("11-resource-servers");
    await assertNoHorizontalScroll("resource servers");
    await page.getByRole("link", { name: "Edit" }).first().click();
    await page.getByRole("button", { name: "Save changes" }).waitFor();
    await shot("11b-edit-resource-server");
    await assertNoHorizontalScroll("edit resource server");
    await page.getByRole("link", { name: "Cancel" }).click();
    await nav().getByRole("link", { name: "Groups" }).click();
    await page.getByLabel("Name").fill(GROUP.name);
    await page.getByRole("button", { name: "Create group" }).click();
    await page.waitForURL(/\/console\/groups\/[0-9a-f-]+\?done=created/);
    const groupUrl = page.url().replace(/\?.*$/, "");
    await page.getByLabel("Add a member by username").fill("admin");
    await page.getByRole("button", { name: "Add member" }).click();
    await page.waitForURL(/done=member-added/);
    assert.ok(await page.getByRole("link", { name: "admin", exact: true }).isVisible());
    // The group's own roles: granted here, shown on a member's page.
    await page.getByRole("button", { name: "Grant Audit Administrator" }).click();
    await page.waitForURL(/done=role-granted/);
    assert.ok(await page.getByRole("button", { name: "Revoke Audit Administrator" }).isVisible());
    // Renaming: an empty name is refused beside the field.
    await page.getByLabel("Group name").fill("");
    await page.getByRole("button", { name: "Rename group" }).click();
    await page.waitForSelector("#name-error");
    await page.getByLabel("Group name").fill(GROUP.renamed);
    await page.getByRole("button", { name: "Rename group" }).click();
    await page.waitForURL(/done=renamed/);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), GROUP.renamed);
    await shot("11c-group");
    await assertNoHorizontalScroll("group");
    await page.getByRole("link", { name: "admin", exact: true }).click();
    const held = page.getByRole("row", { name: /^Audit Administrator/ });
    assert.ok(await held.getByRole("link", { name: GROUP.renamed }).isVisible());
    assert.equal(await held.getByRole("button", { name: /^Revoke/ }).count(), 0, "held through the group only");
    // Their console sign-ins: this browser's among them.
    assert.ok(await page.locator(".badge", { hasText: "This browser" }).isVisible());
    await shot("11d-user-roles");
    // Revoking from the group asks first.
    await page.goto(groupUrl);
    await page.getByRole("button", { name: "Revoke Audit Administrator" }).click();
    await page.getByRole("heading", { name: "Revoke this role from the group?" }).waitFor();
    await page.getByRole("button", { name: "Revoke role" }).click();
    await page.waitForURL(/done=role-revoked/);
    assert.ok(await page.getByRole("button", { name: "Grant Audit Administrator" }).isVisible());
    await nav().getByRole("link", { name: "Signing keys" }).click();
    await shot("12-signing-keys");
    await nav().getByRole("link", { name: "Audit events" }).click();
    await page.getByLabel("Event type").fill("user.locked");
    await page.getByRole("button", { name: "Filter" }).click();
    assert.ok(await page.getByRole("cell", { name: "user.locked" }).first().isVisible());
    // Who locked whom, by username; the recorded ids on hover.
    const lockedRow = page.getByRole("row").filter({ hasText: "user.locked" }).first();
    const actor = lockedRow.locator("td.actor span");
    assert.equal(await actor.textContent(), "admin");
    assert.match(await actor.getAttribute("title"), /^user id [0-9a-f-]{36}$/);
    const subject = lockedRow.locator("td.subject span");
    assert.equal(await subject.textContent(), USER.name);
    assert.match(await subject.getAttribute("title"), /^user id [0-9a-f-]{36}$/);
    // The subject filter takes the username the column shows, and finds
    // both the changes made to the user and their sign-ins.
    await page.getByLabel("Event type").fill("");
    await page.getByLabel("Subject (username or id)").fill(USER.name);
    await page.getByRole("button", { name: "Filter" }).click();
    assert.ok(await page.getByRole("cell", { name: "user.locked" }).first().isVisible());
    assert.ok(await page.getByRole("cell", { name: "user.signin" }).first().isVisible());
    await shot("13a-audit-by-username");
    await page.getByRole("link", { name: "Clear" }).click();
    await shot("13-audit");
    await assertNoHorizontalScroll("audit");
  });

  it("fits a narrow screen", async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    await page.goto(`${BASE}/console/users`);
    await shot("14-users-narrow");
    await assertNoHorizontalScroll("users at 375px");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("shows every column of the Users table at 390 px, Status included", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${BASE}/console/users`);
    await shot("14b-users-390");
    await assertNoHorizontalScroll("users at 390px");
    // Inside the window without scrolling the table sideways.
    const rows = page.locator("table tbody tr");
    assert.ok((await rows.count()) > 0);
    for (const [column, name] of [[1, "Username"], [4, "Status"]]) {
      const cell = rows.first().locator(`td:nth-child(${column})`);
      const box = await cell.boundingBox();
      assert.ok(box && box.width > 0, `${name}: not shown`);
      assert.ok(box.x >= 0 && box.x + box.width <= 390, `${name}: at ${box.x}..${box.x + box.width} px of 390`);
    }
    // The Status cell still says what it is, and its badge is readable.
    const status = rows.first().locator("td:nth-child(4)");
    assert.equal(await status.getAttribute("data-label"), "Status");
    const badge = status.locator(".badge").first();
    const badgeBox = await badge.boundingBox();
    assert.ok(badgeBox && badgeBox.x + badgeBox.width <= 390, "the status badge is inside the window");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("signs out, and the old cookie no longer works", async () => {
    const before = await page.context().cookies();
    await signOut();
    await shot("15-signed-out");
    await page.context().addCookies(before.filter((c) => c.name === "latchkey_console"));
    await page.goto(`${BASE}/console/users`);
    assert.match(page.url(), /\/console\/signin/);
  });

  it("a user without an admin role sees only their profile, not the Applications page", async () => {
    await signIn(USER.name, USER.password);
    await page.waitForURL(`${BASE}/console/profile`);
    assert.equal(await nav().getByRole("link", { name: "Applications" }).count(), 0);
    assert.equal(await nav().getByRole("link", { name: "Users", exact: true }).count(), 0);
    await shot("16-profile");
    await assertNoHorizontalScroll("profile");
    const apps = await page.goto(`${BASE}/console/apps`);
    assert.equal(apps.status(), 403);
    assert.ok(await page.getByRole("heading", { name: "Not allowed" }).isVisible());
    await shot("17-not-allowed");
    const users = await page.goto(`${BASE}/console/users`);
    assert.equal(users.status(), 403);

    // Their own password: the current one is required.
    await page.goto(`${BASE}/console/profile`);
    await page.getByLabel("Current password").fill("a guess");
    await page.getByLabel("New password", { exact: true }).fill("another long password");
    await page.getByLabel("Repeat the new password").fill("another long password");
    await page.getByRole("button", { name: "Change password" }).click();
    await page.waitForSelector("#current_password-error");
    await shot("18-profile-error");
    await signOut();
  });
});
