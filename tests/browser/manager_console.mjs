// A partner manager's first session, in a real browser: create a catalog, add and order
// courses, invite, resend, revoke, export, and find it all in the audit log.
// Usage: APP_URL=http://127.0.0.1:PORT SHOTS=dir node tests/browser/manager_console.mjs
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { checkPage } from './a11y.mjs';

const base = process.env.APP_URL;
const shots = process.env.SHOTS || 'target/browser';
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
// axe is injected into the pages, whose policy allows no script of their own.
const context = await browser.newContext({ bypassCSP: true, acceptDownloads: true });
const page = await context.newPage();
page.setDefaultTimeout(15000);
// The content security policy must not block anything the pages themselves use.
const blocked = [];
page.on('console', (message) => {
  if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
    blocked.push(message.text());
  }
});
const step = (name) => console.log(`- ${name}`);
// Every key page is checked with axe and saved at both widths.
const shot = (name) => checkPage(page, name, (width) => `${shots}/manager-${name}-${width}.png`);

try {
  step('sign in as the demo manager');
  await page.goto(`${base}/login`);
  await page.getByLabel('Email').fill('manager@example.com');
  await page.getByLabel('Password').fill('demo-manager-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('link', { name: 'New catalog' }).first().waitFor();
  await shot('1-dashboard');

  step('a bad catalog form keeps what was typed and names the field');
  await page.getByRole('link', { name: 'New catalog' }).first().click();
  await page.getByLabel('Name').fill('Onboarding <2027>');
  await page.getByLabel('Learner limit').fill('-1');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Please correct the following').waitFor();
  assert.equal(await page.getByLabel('Name').inputValue(), 'Onboarding <2027>');

  step('create the catalog');
  await page.getByLabel('Description').fill('Courses for <b>new</b> starters');
  await page.getByLabel('Available from').fill('2026-01-01T09:00');
  await page.getByLabel('Available until').fill('2030-12-31T18:00');
  await page.getByLabel('Learner limit').fill('25');
  await page.getByLabel('Paid seat limit').fill('5');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Now add its courses').waitFor();
  await page.getByRole('heading', { name: 'Courses of Onboarding <2027>' }).waitFor();
  const catalogUrl = page.url().replace(/\/courses.*$/, '');

  step('add three courses and move the last one up');
  for (let i = 0; i < 3; i++) {
    await page.getByRole('button', { name: 'Add', exact: true }).first().click();
    await page.waitForLoadState('load');
  }
  const titles = async () =>
    page.locator('table').first().locator('tbody tr td:nth-child(2)').evaluateAll((cells) =>
      cells.map((c) => c.firstChild.textContent.trim()));
  const before = await titles();
  assert.equal(before.length, 3);
  await page.getByRole('button', { name: `Move ${before[2]} up` }).click();
  await page.waitForLoadState('load');
  assert.deepEqual(await titles(), [before[0], before[2], before[1]]);
  // The page returns to the moved row: one Tab reaches its buttons again.
  assert.match(page.url(), /#course-\d+$/);
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement.getAttribute('aria-label'));
  assert.equal(focused, `Move ${before[2]} up`);
  await shot('2-courses');

  step('invite two addresses, one of them badly typed');
  await page.getByRole('link', { name: 'Invitations' }).click();
  await page.getByLabel('Email addresses').fill('ana@acme.test\nnot-an-address\nbob@acme.test');
  await page.getByRole('button', { name: 'Send invitations' }).click();
  await page.getByText('not-an-address').first().waitFor();
  const rows = page.locator('table tbody tr');
  await rows.filter({ hasText: 'ana@acme.test' }).waitFor();
  await rows.filter({ hasText: 'bob@acme.test' }).waitFor();

  step('resend to ana');
  await rows.filter({ hasText: 'ana@acme.test' }).getByRole('button', { name: 'Resend' }).click();
  await page.waitForLoadState('load');
  await rows.filter({ hasText: 'ana@acme.test' }).getByText('×2').waitFor();

  step('revoke bob with a reason');
  await rows.filter({ hasText: 'bob@acme.test' }).getByRole('link', { name: 'Revoke' }).click();
  await page.getByLabel('Reason (optional)').fill('wrong team');
  await page.getByRole('button', { name: /Revoke/ }).click();
  await page.waitForLoadState('load');
  await rows.filter({ hasText: 'bob@acme.test' }).getByText('removed').waitFor();
  await shot('3-invitations');

  step('export the invitations');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Export CSV' }).click(),
  ]);
  const path = await download.path();
  const csv = (await import('node:fs')).readFileSync(path, 'utf8');
  assert.match(csv.split('\n')[0], /email/);
  assert.match(csv, /ana@acme\.test/);
  assert.match(csv, /bob@acme\.test/);

  step('find it all in the audit log');
  await page.getByRole('navigation', { name: 'Catalog' }).getByRole('link', { name: 'Audit log' }).click();
  const log = await page.locator('main').innerText();
  for (const sentence of [
    'created the catalog Onboarding <2027>',
    'added a course: ',
    'invited someone: ana@acme.test, in Onboarding <2027>.',
    'sent an invitation again: ana@acme.test',
    'revoked an invitation: bob@acme.test',
  ]) {
    assert.ok(log.includes(sentence), `audit log says "${sentence}"`);
  }
  assert.match(log, /Why: \W?wrong team/, 'audit log shows the reason');
  await shot('4-audit');

  step('partner text is escaped, never markup');
  await page.goto(catalogUrl);
  assert.equal(await page.getByLabel('Description').inputValue(), 'Courses for <b>new</b> starters');
  assert.equal(await page.locator('main b', { hasText: 'new' }).count(), 0);

  step('the stylesheet applied and nothing was blocked by the content security policy');
  const background = await page.evaluate(() => getComputedStyle(document.querySelector('header.topbar')).backgroundColor);
  assert.notEqual(background, 'rgba(0, 0, 0, 0)');
  assert.deepEqual(blocked, []);
  console.log('ok');
} catch (error) {
  await page.screenshot({ path: `${shots}/manager-failure.png`, fullPage: true }).catch(() => {});
  console.error(error);
  process.exitCode = 1;
} finally {
  await browser.close();
}
