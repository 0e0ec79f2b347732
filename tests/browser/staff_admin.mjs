// Staff after `serve --demo`: sign in, see partners, courses and users, manage the shared
// pool, and get every bad row of a course import named.
// Usage: APP_URL=http://127.0.0.1:PORT SHOTS=dir node tests/browser/staff_admin.mjs
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
const page = await (await browser.newContext({ bypassCSP: true, acceptDownloads: true })).newPage();
page.setDefaultTimeout(15000);
const step = (name) => console.log(`- ${name}`);
// Every key page is checked with axe and saved at both widths.
const shot = (name) => checkPage(page, name, (width) => `${shots}/staff-${name}-${width}.png`);
const nav = () => page.getByRole('banner');

try {
  step('sign in as the demo staff user');
  await page.goto(`${base}/login`);
  await page.getByLabel('Email').fill('staff@example.com');
  await page.getByLabel('Password').fill('demo-staff-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await nav().getByRole('link', { name: 'Partners' }).waitFor();
  await shot('1-dashboard');

  step('partners: the demo partner with its manager');
  await nav().getByRole('link', { name: 'Partners' }).click();
  await page.getByRole('cell', { name: 'ACME Corporation', exact: true }).waitFor();
  await page.getByRole('row', { name: /ACME Corporation/ }).getByRole('link', { name: 'Edit' }).click();
  await page.getByRole('cell', { name: 'manager@example.com', exact: true }).waitFor();
  await shot('2-partner');

  step('courses: twelve demo courses, one put into the shared pool');
  await nav().getByRole('link', { name: 'Courses' }).click();
  await page.getByText('12 in all').waitFor();
  const row = page.getByRole('row', { name: /Negotiation Skills/ });
  await row.getByRole('button', { name: 'Add to pool' }).click();
  await page.getByText('is now in the shared pool').waitFor();
  await page.getByRole('link', { name: 'Shared pool' }).click();
  await page.getByRole('cell', { name: 'Negotiation Skills' }).waitFor();
  await shot('3-shared-pool');

  step('a course import with bad rows names each line and imports nothing');
  await page.getByRole('link', { name: 'Import CSV' }).click();
  const csv = 'key,title,organisation,modes,start,end\n' +
    'course-v1:ACMEx+NEW1+2027,New one,ACMEx,audit,,\n' +
    'course-v1:ACMEx+NEW2+2027,,ACMEx,audit,,\n' +
    'course-v1:NOPEx+NEW3+2027,Elsewhere,NOPEx,audit,,\n';
  await page.getByLabel('CSV').fill(csv);
  await page.getByRole('button', { name: 'Import' }).click();
  await page.getByText('Nothing was imported').waitFor();
  const report = await page.getByRole('alert').first().innerText();
  assert.match(report, /Line 3: title is required/);
  assert.match(report, /Line 4: organisation NOPEx does not exist/);
  assert.equal(await page.getByLabel('CSV').inputValue(), csv);
  await shot('4-import-errors');

  step('users: search, open, and be refused deactivating oneself');
  await nav().getByRole('link', { name: 'Users' }).click();
  await page.getByRole('searchbox').fill('learner@');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('cell', { name: 'learner@example.com', exact: true }).waitFor();
  assert.equal(await page.getByRole('cell', { name: 'manager@example.com', exact: true }).count(), 0);
  await page.getByRole('searchbox').fill('staff@');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: 'Open' }).click();
  // One's own account offers no deactivation, and says why.
  await page.getByText('You cannot deactivate your own account.').waitFor();
  assert.equal(await page.getByRole('link', { name: 'Deactivate…' }).count(), 0);
  await shot('5-user');

  step('deactivating someone else asks first, with a reason for the audit log');
  await nav().getByRole('link', { name: 'Users' }).click();
  await page.getByRole('searchbox').fill('learner@');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: 'Open' }).click();
  await page.getByRole('link', { name: 'Deactivate…' }).click();
  await page.getByRole('heading', { name: /Deactivate learner@example.com\?/ }).waitFor();
  await shot('6-confirm');
  await page.getByLabel('Reason (optional)').fill('Left the company');
  await page.getByRole('button', { name: 'Deactivate' }).click();
  await page.getByText('is deactivated and can no longer sign in').waitFor();

  step('the audit log says who did what and why, filtered by action and date');
  await nav().getByRole('link', { name: 'Audit log' }).click();
  await page.getByLabel('Action').selectOption({ label: 'deactivated an account' });
  await page.getByLabel('From').fill('2000-01-01');
  await page.getByRole('button', { name: 'Filter' }).click();
  const entries = page.getByRole('list', { name: 'Audit entries' }).getByRole('listitem');
  await entries.first().waitFor();
  assert.equal(await entries.count(), 1);
  const sentence = await entries.first().innerText();
  assert.match(sentence, /\(staff\) deactivated an account: learner@example\.com\./);
  assert.match(sentence, /Why: \W?Left the company/);
  await shot('7-audit');
  step('a date that is not one is named, kept, and takes focus');
  await page.getByLabel('From').evaluate((input) => { input.type = 'text'; });
  await page.getByLabel('From').fill('yesterday');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByRole('link', { name: 'From' }).waitFor();
  assert.equal(await page.getByLabel('From').getAttribute('value'), 'yesterday');
  await shot('8-audit-error');
  console.log('ok');
} catch (error) {
  await page.screenshot({ path: `${shots}/staff-failure.png`, fullPage: true }).catch(() => {});
  console.error(error);
  process.exitCode = 1;
} finally {
  await browser.close();
}
