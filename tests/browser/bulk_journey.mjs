// A bulk list from upload to results, after `serve --demo`: the manager uploads a
// 120-row CSV, sees the preview and submits it; staff approve it from their queue; the
// progress runs to done; the result file downloads with every row. Every page visited
// is checked with axe at 1280 and 390 px.
// Usage: APP_URL=http://127.0.0.1:PORT SHOTS=dir node tests/browser/bulk_journey.mjs
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { checkPage } from './a11y.mjs';

const base = process.env.APP_URL;
const shots = process.env.SHOTS || 'target/browser';
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
// The pages' own policy applies: the progress script must run under it, and nothing may
// be blocked. (axe is evaluated through the debugging protocol, which the policy allows.)
const context = await browser.newContext({ acceptDownloads: true });
const page = await context.newPage();
const blocked = [];
page.on('console', (message) => {
  if (/Content Security Policy/i.test(message.text())) blocked.push(message.text());
});
page.setDefaultTimeout(20000);
const step = (name) => console.log(`- ${name}`);
// Every key page is checked with axe and saved at both widths.
const shot = (name) => checkPage(page, name, (width) => `${shots}/bulk-${name}-${width}.png`);
const nav = () => page.getByRole('banner');

async function signIn(email, password) {
  await page.goto(`${base}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await nav().getByRole('link', { name: 'My catalogs' }).waitFor();
}

async function signOut() {
  await nav().getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
}

try {
  step('the manager opens the bulk lists of a catalog');
  await signIn('manager@example.com', 'demo-manager-password');
  await nav().getByRole('link', { name: 'My partner' }).click();
  await page.getByRole('link', { name: 'Sales Academy' }).first().click();
  await page.getByRole('navigation', { name: 'Catalog' }).getByRole('link', { name: 'Bulk lists' }).click();
  await page.getByRole('heading', { name: /Bulk lists for/ }).waitFor();
  await checkPage(page, 'bulk lists');
  await shot('1-form');

  step('a file that is not a list is refused, naming the problem');
  await page.getByLabel('CSV file').setInputFiles({
    name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from('name,mail\nAda,ada@example.org\n'),
  });
  await page.getByRole('button', { name: 'Read the list and preview' }).click();
  await page.getByText('the header has no "email" column').first().waitFor();
  await checkPage(page, 'bulk lists with an error');

  step('a 120-row CSV is read and previewed');
  let csv = 'email,full_name\n';
  for (let i = 0; i < 118; i++) csv += `employee${String(i).padStart(3, '0')}@acme-staff.example,Employee ${i}\n`;
  csv += 'not an address,Broken\n';
  csv += 'employee000@acme-staff.example,Twice\n';
  await page.getByLabel('CSV file').setInputFiles({ name: 'employees.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByRole('button', { name: 'Read the list and preview' }).click();
  await page.getByRole('heading', { name: 'Preview' }).waitFor();
  await page.getByText('120 rows read').waitFor();
  await page.getByRole('heading', { name: 'to be invited: 118' }).waitFor();
  await page.getByRole('heading', { name: 'not an email address: 1' }).waitFor();
  await page.getByRole('heading', { name: 'appears earlier in the list: 1' }).waitFor();
  await page.getByText('it will wait for the platform').waitFor();
  await checkPage(page, 'preview');
  await shot('2-preview');

  step('submitted, it waits for staff approval');
  await page.getByRole('button', { name: 'Submit the list' }).click();
  await page.getByText('waits for staff approval').first().waitFor();
  const jobUrl = page.url();
  await checkPage(page, 'waiting list');
  await signOut();

  step('staff see it waiting in their queue and approve it');
  await signIn('staff@example.com', 'demo-staff-password');
  const approvals = nav().getByRole('link', { name: /Bulk approvals/ });
  assert.match(await approvals.innerText(), /1/);
  await approvals.click();
  await page.getByRole('heading', { name: 'Bulk lists' }).waitFor();
  await checkPage(page, 'staff queue');
  await shot('3-queue');
  await page.getByRole('link', { name: /employees\.csv/ }).click();
  await page.getByRole('heading', { name: 'Decide' }).waitFor();
  await checkPage(page, 'staff decision');
  await page.getByRole('button', { name: 'Reject' }).click();
  await page.getByText('is required').first().waitFor();
  await page.getByRole('button', { name: 'Approve and run' }).click();
  await page.getByText('Approved: the list is running').waitFor();
  await checkPage(page, 'running list');

  step('the progress runs to done in place: the page is not reloaded');
  await page.evaluate(() => { window.sameDocument = true; });
  await page.getByRole('status').filter({ hasText: 'Done' }).waitFor({ timeout: 60000 });
  await page.getByText('120 of 120 rows handled').waitFor();
  assert.equal(await page.evaluate(() => window.sameDocument), true, 'no reload while running');
  await page.getByRole('link', { name: 'Show the results' }).click();
  await page.getByRole('region', { name: 'Outcomes' }).waitFor();
  await checkPage(page, 'finished list');
  await shot('4-done');

  step('the result file lists every row');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: /Download every row with its outcome/ }).click(),
  ]);
  const lines = readFileSync(await download.path(), 'utf8').trim().split('\n');
  assert.equal(lines[0], 'line,email,external_user_key,full_name,planned,outcome,detail');
  assert.equal(lines.length, 121);
  assert.equal(lines.filter((l) => l.includes(',invited,invited,')).length, 118);
  assert.ok(lines.some((l) => l.startsWith('121,employee000@acme-staff.example,,Twice,duplicate_in_file,duplicate_in_file,also on line 2')));

  step('the manager sees the same list done');
  await signOut();
  await signIn('manager@example.com', 'demo-manager-password');
  await page.goto(jobUrl);
  await page.getByText('120 of 120 rows handled').waitFor();

  step('pre-enrolments: one person, listed and cancelled');
  await page.goto(jobUrl.replace(/\/bulk\/\d+$/, '/pre-enrolments'));
  await checkPage(page, 'pre-enrolments');
  await page.getByLabel('Email address or provider:remote_id').fill('future.hire@acme-staff.example');
  await page.getByRole('button', { name: 'Pre-enrol' }).click();
  await page.getByText('is pre-enrolled: they join as soon as their account appears').waitFor();
  await page.getByRole('link', { name: /Cancel the pre-enrolment of future.hire/ }).click();
  await page.getByRole('heading', { name: 'Cancel a pre-enrolment' }).waitFor();
  await checkPage(page, 'pre-enrolment cancel question');
  await page.getByLabel('Reason (optional)').fill('Hired elsewhere');
  await page.getByRole('button', { name: 'Cancel the pre-enrolment' }).click();
  await page.getByText('was cancelled').waitFor();
  await checkPage(page, 'pre-enrolments after cancelling');
  await shot('5-pre-enrolments');
  assert.deepEqual(blocked, [], 'nothing blocked by the content security policy');
  console.log('ok');
} catch (error) {
  await page.screenshot({ path: `${shots}/bulk-failure.png`, fullPage: true }).catch(() => {});
  console.error(error);
  process.exitCode = 1;
} finally {
  await browser.close();
}
