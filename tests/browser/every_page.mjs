// Every page a person can open, for each demo person and for someone not signed in, after
// `serve --demo`: each is checked with axe at 1280 and 390 px (no sideways scroll on the
// phone) and saved at both widths. The routes are the `#[get]` handlers of src/web; only
// CSV downloads and JSON progress answers are left out. The pages' links are followed
// too, and none may answer an error. Links that arrive by email (invitation, password
// reset, address confirmation, manager claim) are read from the `.eml` files the worker
// writes into MAIL_DIR.
// Usage: APP_URL=http://127.0.0.1:PORT SHOTS=dir MAIL_DIR=dir node tests/browser/every_page.mjs
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkPage } from './a11y.mjs';

const base = process.env.APP_URL;
const shots = process.env.SHOTS || 'target/browser';
const mailDir = process.env.MAIL_DIR;
assert.ok(mailDir, 'MAIL_DIR names where the emails are written');
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const step = (name) => console.log(`- ${name}`);
// The pages' own content security policy applies; nothing may be blocked by it.
const blocked = [];
// Pages checked per person, and the links seen on them (to follow at the end of each).
const visited = {};
// The page in use, for the failure screenshot.
let current;

/// A browser of its own for one person: no cookie is shared between people.
async function open(role) {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) blocked.push(`${role}: ${message.text()}`);
  });
  current = page;
  visited[role] = { pages: [], links: new Set(), seen: new Set() };
  return { page, role, context };
}

/// axe and the screenshots of the page as it is now.
async function check(who, name) {
  const { page, role } = who;
  visited[role].pages.push(name);
  visited[role].seen.add(new URL(page.url()).pathname + new URL(page.url()).search);
  await checkPage(page, `${role} ${name}`, (width) => `${shots}/every-${role}-${name}-${width}.png`);
  const hrefs = await page.$$eval('a[href]', (links) => links.map((a) => a.href));
  for (const href of hrefs) {
    if (href.startsWith(base)) visited[role].links.add(href.replace(/#.*$/, ''));
  }
}

/// Opens a page by its address, expects its status, and checks it.
async function visit(who, name, path, status = 200) {
  step(`${who.role}: ${name} (${path})`);
  const response = await who.page.goto(`${base}${path}`);
  assert.equal(response.status(), status, `${path} answers ${status}`);
  await check(who, name);
}

/// The first link on the page whose address matches, as a path.
async function hrefMatching(page, pattern) {
  const hrefs = await page.$$eval('a[href]', (links) => links.map((a) => a.getAttribute('href')));
  const found = hrefs.find((href) => pattern.test(href));
  assert.ok(found, `a link like ${pattern} on ${page.url()}`);
  return found;
}

/// Every link seen on this person's pages answers without an error. Links are GET only,
/// so following them changes nothing.
async function followLinks(who) {
  const { page, role } = who;
  const links = [...visited[role].links].filter((href) => {
    const url = new URL(href);
    return !visited[role].seen.has(url.pathname + url.search);
  });
  step(`${role}: every link on those pages answers (${links.length} more addresses)`);
  const broken = [];
  for (const href of links) {
    const response = await page.request.get(href, { maxRedirects: 0 });
    if (response.status() >= 400) broken.push(`${response.status()} ${href}`);
  }
  assert.deepEqual(broken, [], `broken links on the pages of ${role}`);
}

async function signIn(who, email, password) {
  step(`${who.role}: sign in as ${email}`);
  await who.page.goto(`${base}/login`);
  await who.page.getByLabel('Email').fill(email);
  await who.page.getByLabel('Password').fill(password);
  await who.page.getByRole('button', { name: 'Sign in' }).click();
  await who.page.getByRole('banner').getByRole('link', { name: 'My catalogs' }).waitFor();
}

/// The newest emailed link of a kind (`invitations`, `password/reset`, ...) to an address,
/// as a path; waits for the worker to write it.
async function mailedLink(to, kind) {
  const pattern = new RegExp(`https?://[^/\\s"]+(/${kind}/[A-Za-z0-9_-]+)`);
  const addressed = new RegExp(`^To: .*${to.replace(/[.]/g, '\\.')}`, 'mi');
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const files = existsSync(mailDir) ? readdirSync(mailDir).filter((f) => f.endsWith('.eml')) : [];
    const newestFirst = files
      .map((f) => ({ path: join(mailDir, f), at: statSync(join(mailDir, f)).mtimeMs }))
      .sort((a, b) => b.at - a.at);
    for (const { path } of newestFirst) {
      // Quoted-printable: soft line breaks and =XX escapes.
      const text = readFileSync(path, 'utf8')
        .replace(/=\r?\n/g, '')
        .replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
      const link = addressed.test(text) && text.match(pattern);
      if (link) return link[1];
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no email to ${to} with a /${kind}/ link in ${mailDir}`);
}

/// The partner console, as its manager or as staff: every tab of a catalog with some
/// people in it, the confirmations, filters, the archive and the audit log.
async function partnerPages(who) {
  const { page } = who;
  await visit(who, 'api-tokens', '/account/api-tokens');
  step(`${who.role}: make an API token (its secret shown once)`);
  await page.getByLabel('Name').fill(`HR sync of ${who.role}`);
  await page.getByRole('button', { name: 'Make the token' }).click();
  await page.getByRole('textbox', { name: 'Token' }).waitFor();
  await check(who, 'api-token-made');
  await visit(who, 'api-token-revoke', await hrefMatching(page, /\/account\/api-tokens\/\d+\/revoke$/));
  await visit(who, 'partner-dashboard', '/partner/acme');
  const catalog = (await page.getByRole('link', { name: 'Sales Academy', exact: true }).getAttribute('href'))
    .replace(/\/invitations$/, '');
  await visit(who, 'catalog-new', '/partner/acme/catalogs/new');
  await visit(who, 'catalog-settings', catalog);
  await visit(who, 'catalog-settings-address-test', `${catalog}?test_email=someone%40elsewhere.test`);
  await visit(who, 'catalog-courses', `${catalog}/courses`);
  await visit(who, 'catalog-courses-search', `${catalog}/courses?q=data`);
  await visit(who, 'catalog-course-remove', await hrefMatching(page, /\/courses\/\d+\/remove$/));
  await visit(who, 'invitations', `${catalog}/invitations`);
  const removeInvitation = await hrefMatching(page, /\/invitations\/\d+\/remove$/);
  await visit(who, 'invitations-filtered', `${catalog}/invitations?status=sent&q=example`);
  await visit(who, 'invitation-remove', removeInvitation);
  await visit(who, 'learners', `${catalog}/learners`);
  const removeLearner = await hrefMatching(page, /\/learners\/\d+\/remove$/);
  await visit(who, 'learners-filtered', `${catalog}/learners?status=active&q=lee`);
  await visit(who, 'learner-remove', removeLearner);
  await visit(who, 'paid-seats', `${catalog}/licences`);
  const release = await hrefMatching(page, /\/licences\/\d+\/deactivate$/);
  await visit(who, 'paid-seats-filtered', `${catalog}/licences?status=active`);
  await visit(who, 'paid-seat-release', release);
  await visit(who, 'bulk-lists', `${catalog}/bulk`);
  const job = await hrefMatching(page, /\/bulk\/\d+$/);
  await visit(who, 'bulk-list', job);
  await visit(who, 'bulk-list-cancel', `${job}/cancel`);
  await visit(who, 'pre-enrolments', `${catalog}/pre-enrolments`);
  await visit(who, 'pre-enrolment-cancel', await hrefMatching(page, /\/pre-enrolments\/\d+\/cancel$/));
  await visit(who, 'preview', `${catalog}/preview`);
  await visit(who, 'archive', `${catalog}/archive`);
  await visit(who, 'archived', '/partner/acme/archived');
  const archived = await hrefMatching(page, /\/partner\/acme\/catalogs\/\d+/);
  await visit(who, 'archived-catalog', archived.replace(/^(\/partner\/acme\/catalogs\/\d+).*$/, '$1'));
  await visit(who, 'partner-analytics', '/partner/acme/analytics');
  await visit(who, 'partner-analytics-90-days', '/partner/acme/analytics?period=90');
  await visit(who, 'partner-analytics-dates', '/partner/acme/analytics?period=custom&from=2026-01-01&until=2026-03-31');
  await visit(who, 'partner-analytics-bad-dates', '/partner/acme/analytics?period=custom&from=2026-03-31&until=2026-01-01', 400);
  await visit(who, 'catalog-analytics', `${catalog}/analytics`);
  await visit(who, 'partner-audit', '/partner/acme/audit');
  step(`${who.role}: partner-audit-filtered`);
  await page.getByLabel('Catalog').selectOption({ label: 'Sales Academy' });
  await page.getByLabel('Action').selectOption({ index: 1 });
  await page.getByLabel('Who (email)').fill('manager@');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/action=/);
  await check(who, 'partner-audit-filtered');
}

/// Pages every signed-in person has.
async function ownPages(who) {
  await visit(who, 'home', '/');
  await visit(who, 'my-catalogs', '/my');
  await visit(who, 'account', '/account');
  await visit(who, 'not-found', '/no-such-page', 404);
}

let manager;
try {
  // --- Someone not signed in -------------------------------------------------------------
  const visitor = await open('anonymous');
  await visit(visitor, 'home', '/');
  await visit(visitor, 'login', '/login');
  await visit(visitor, 'login-from-a-link', '/login?next=%2Fmy&email=learner%40example.com');
  await visit(visitor, 'api-docs', '/api/docs');
  await visit(visitor, 'signup', '/signup');
  step('anonymous: sign up a new account');
  await visitor.page.getByLabel('Email').fill('new.person@example.org');
  await visitor.page.getByLabel('Full name').fill('Noor Newperson');
  await visitor.page.getByLabel('Password', { exact: true }).fill('a fresh password 42');
  await visitor.page.getByLabel('Password again').fill('a fresh password 42');
  await visitor.page.getByRole('button', { name: 'Create account' }).click();
  await visitor.page.getByRole('heading', { name: 'Check your email' }).waitFor();
  await check(visitor, 'signup-sent');
  await visit(visitor, 'password-forgot', '/password/forgot');
  step('anonymous: ask for a password reset');
  await visitor.page.getByLabel('Email').fill('learner@example.com');
  await visitor.page.getByRole('button', { name: 'Send the link' }).click();
  await visitor.page.getByText('a link to choose a new password is on its way').waitFor();
  await check(visitor, 'password-forgot-sent');
  await visit(visitor, 'not-found', '/no-such-page', 404);
  await visit(visitor, 'partner-console-signed-out', '/partner/acme');
  await visit(visitor, 'staff-signed-out', '/staff');
  await visit(visitor, 'verify-email-same-browser', await mailedLink('new.person@example.org', 'verify-email'));
  await visit(visitor, 'password-reset', await mailedLink('learner@example.com', 'password/reset'));

  // --- The manager invites, lists and pre-enrols, so the tabs have people in them -------
  manager = await open('manager');
  current = manager.page;
  await signIn(manager, 'manager@example.com', 'demo-manager-password');
  await manager.page.goto(`${base}/partner/acme`);
  const salesAcademy = (await manager.page.getByRole('link', { name: 'Sales Academy', exact: true })
    .getAttribute('href')).replace(/\/invitations$/, '');
  step('manager: invite the demo learner and a newcomer');
  await manager.page.goto(`${base}${salesAcademy}/invitations`);
  await manager.page.getByLabel('Email addresses').fill('learner@example.com\nnewcomer@example.org');
  await manager.page.getByRole('button', { name: 'Send invitations' }).click();
  await manager.page.getByText('2 invitations sent').waitFor();
  await check(manager, 'invitations-sent');
  step('manager: a bulk list of 60, waiting for staff');
  await manager.page.goto(`${base}${salesAcademy}/bulk`);
  await manager.page.getByLabel('Invite: email each address a link to join').check();
  const addresses = Array.from({ length: 60 }, (_, i) => `hire${i}@acme-staff.example`).join('\n');
  await manager.page.getByLabel('Or paste addresses').fill(addresses);
  await manager.page.getByRole('button', { name: 'Read the list and preview' }).click();
  await manager.page.getByRole('heading', { name: 'Preview' }).waitFor();
  await check(manager, 'bulk-preview');
  await manager.page.getByRole('button', { name: 'Submit the list' }).click();
  await manager.page.getByText('waits for staff approval').first().waitFor();
  step('manager: pre-enrol someone without an account');
  await manager.page.goto(`${base}${salesAcademy}/pre-enrolments`);
  await manager.page.getByLabel('Email address or provider:remote_id').fill('future.hire@acme-staff.example');
  await manager.page.getByRole('button', { name: 'Pre-enrol' }).click();
  await manager.page.getByText('is pre-enrolled').waitFor();
  step('manager: create a catalog and archive it');
  await manager.page.goto(`${base}/partner/acme/catalogs/new`);
  await manager.page.getByLabel('Name').fill('Winter Onboarding');
  await manager.page.getByLabel('Available from').fill('2026-01-01T09:00');
  await manager.page.getByLabel('Available until').fill('2026-03-31T18:00');
  await manager.page.getByRole('button', { name: 'Save' }).click();
  await manager.page.getByText('Now add its courses').waitFor();
  await manager.page.goto(manager.page.url().replace(/\/courses.*$/, '/archive'));
  await manager.page.getByLabel('Reason (optional)').fill('The season is over');
  await manager.page.getByRole('button', { name: /Archive/ }).click();
  await manager.page.getByText(/archived/i).first().waitFor();

  // --- Links from those emails, opened by someone not signed in -------------------------
  const stranger = await open('anonymous-elsewhere');
  const newcomerInvitation = await mailedLink('newcomer@example.org', 'invitations');
  await visit(stranger, 'invitation', newcomerInvitation);
  await visit(stranger, 'invitation-decline', `${newcomerInvitation}/decline`);
  await visit(stranger, 'verify-email-elsewhere', await mailedLink('new.person@example.org', 'verify-email'));
  await visit(stranger, 'invitation-unknown', '/invitations/not-a-real-token', 404);

  // --- The learner accepts, joins, enrols ------------------------------------------------
  const learner = await open('learner');
  await signIn(learner, 'learner@example.com', 'demo-learner-password');
  await ownPages(learner);
  const learnerInvitation = await mailedLink('learner@example.com', 'invitations');
  await visit(learner, 'invitation', learnerInvitation);
  await visit(learner, 'invitation-decline', `${learnerInvitation}/decline`);
  step('learner: accept the invitation, join the open catalog, enrol in a paid course');
  await learner.page.goto(`${base}${learnerInvitation}`);
  await learner.page.getByRole('button', { name: 'Accept the invitation' }).click();
  await learner.page.waitForURL(/\/my/);
  await learner.page.getByRole('button', { name: 'Join' }).click();
  await learner.page.waitForLoadState('load');
  await learner.page.getByRole('button', { name: /in Introduction to Computer Science/ }).first().click();
  await learner.page.waitForLoadState('load');
  await learner.page.getByRole('link', { name: /Go to course Introduction to Computer Science/ }).first().waitFor();
  await check(learner, 'my-catalogs-enrolled');
  const course = await learner.page.getByRole('link', { name: /Go to course Introduction to Computer Science/ })
    .first().getAttribute('href');
  await visit(learner, 'course', new URL(course, base).pathname);
  await visit(learner, 'forbidden-staff', '/staff', 403);
  await visit(learner, 'not-found-partner-console', '/partner/acme', 404);
  await followLinks(learner);

  // --- The manager's console with people in it -------------------------------------------
  current = manager.page;
  await ownPages(manager);
  await partnerPages(manager);
  await visit(manager, 'forbidden-staff', '/staff', 403);
  await visit(manager, 'not-found-catalog', '/partner/acme/catalogs/999999', 404);
  await followLinks(manager);

  // --- Staff -----------------------------------------------------------------------------
  const staff = await open('staff');
  await signIn(staff, 'staff@example.com', 'demo-staff-password');
  const { page } = staff;
  await ownPages(staff);
  await visit(staff, 'staff-dashboard', '/staff');
  await visit(staff, 'organisations', '/staff/organisations');
  const organisation = await hrefMatching(page, /\/staff\/organisations\/\d+\/edit$/);
  await visit(staff, 'organisations-search', '/staff/organisations?q=acme');
  await visit(staff, 'organisation-new', '/staff/organisations/new');
  await visit(staff, 'organisation-edit', organisation);
  await visit(staff, 'partners', '/staff/partners');
  const partner = await hrefMatching(page, /\/staff\/partners\/\d+\/edit$/);
  await visit(staff, 'partners-search', '/staff/partners?q=acme');
  await visit(staff, 'partner-new', '/staff/partners/new');
  await visit(staff, 'partner-edit', partner);
  step('staff: add a manager who has no account yet');
  await page.getByLabel('Add a manager by email').fill('new.manager@example.org');
  await page.getByRole('button', { name: 'Add manager' }).click();
  await page.getByRole('cell', { name: 'new.manager@example.org', exact: true }).waitFor();
  await check(staff, 'partner-manager-added');
  await visit(staff, 'partner-manager-remove', await hrefMatching(page, /\/managers\/\d+\/remove$/));
  await visit(staff, 'courses', '/staff/courses');
  const courseEdit = await hrefMatching(page, /\/staff\/courses\/\d+\/edit$/);
  await visit(staff, 'courses-search', '/staff/courses?q=data');
  await visit(staff, 'courses-shared-pool', '/staff/courses?shared=1');
  await visit(staff, 'course-new', '/staff/courses/new');
  await visit(staff, 'course-edit', courseEdit);
  await visit(staff, 'course-import', '/staff/courses/import');
  await visit(staff, 'users', '/staff/users');
  await visit(staff, 'users-search', '/staff/users?q=learner%40');
  const learnerPage = await hrefMatching(page, /\/staff\/users\/\d+$/);
  await visit(staff, 'user', learnerPage);
  await visit(staff, 'user-make-staff', `${learnerPage}/staff/confirm?value=1`);
  await visit(staff, 'user-deactivate', `${learnerPage}/active/confirm?value=0`);
  await visit(staff, 'users-search-self', '/staff/users?q=staff%40');
  await visit(staff, 'user-self', await hrefMatching(page, /\/staff\/users\/\d+$/));
  await visit(staff, 'outbox', '/staff/outbox');
  const email = await hrefMatching(page, /\/staff\/outbox\/\d+$/);
  await visit(staff, 'outbox-filtered', '/staff/outbox?status=sent&q=learner');
  await visit(staff, 'outbox-email', email);
  await visit(staff, 'audit', '/staff/audit');
  step('staff: audit-filtered');
  await page.getByLabel('Partner code').fill('acme');
  await page.getByLabel('Action').selectOption({ index: 1 });
  await page.getByLabel('From').fill('2000-01-01');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/action=/);
  await check(staff, 'audit-filtered');
  await visit(staff, 'platform-analytics', '/staff/analytics?period=90');
  await visit(staff, 'bulk-queue', '/staff/bulk');
  const staffJob = await hrefMatching(page, /\/staff\/bulk\/\d+$/);
  await visit(staff, 'bulk-queue-filtered', '/staff/bulk?status=pending_approval');
  await visit(staff, 'bulk-decision', staffJob);
  await visit(staff, 'bulk-cancel', `${staffJob}/cancel`);
  await partnerPages(staff);
  await visit(staff, 'not-found-user', '/staff/users/999999', 404);
  await followLinks(staff);

  // --- The claim link the new manager was emailed ----------------------------------------
  current = stranger.page;
  await visit(stranger, 'manager-claim', await mailedLink('new.manager@example.org', 'manager/claim'));
  await followLinks(visitor);
  await followLinks(stranger);

  assert.deepEqual(blocked, [], 'nothing blocked by the content security policy');
  for (const [role, { pages }] of Object.entries(visited)) {
    console.log(`${role}: ${pages.length} pages: ${pages.join(', ')}`);
  }
  console.log('ok');
} catch (error) {
  await current?.screenshot({ path: `${shots}/every-failure.png`, fullPage: true }).catch(() => {});
  console.error(error);
  process.exitCode = 1;
} finally {
  await browser.close();
}
