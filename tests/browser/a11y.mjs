// Accessibility checks shared by the browser journeys: axe on the page as shown, at a
// desktop and a phone width, and no sideways scroll of the page on the phone.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const WIDTHS = [1280, 390];

/// Runs axe at both widths; fails on serious or critical findings, naming them. With
/// `shotPath(width)`, a full-page screenshot is saved at each width too.
export async function checkPage(page, name, shotPath) {
  const original = page.viewportSize();
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    await page.evaluate(axeSource);
    const result = await page.evaluate(async () =>
      // eslint-disable-next-line no-undef
      axe.run(document, { resultTypes: ['violations'] }));
    const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    const described = bad.map((v) =>
      `${v.id} (${v.impact}): ${v.help}\n  ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('\n  ')}`);
    assert.equal(bad.length, 0, `axe on ${name} at ${width}px:\n${described.join('\n')}`);
    if (shotPath) await page.screenshot({ path: shotPath(width), fullPage: true });
    if (width < 600) {
      const overflow = await page.evaluate(() =>
        document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 1, `${name} scrolls sideways by ${overflow}px at ${width}px`);
    }
  }
  if (original) await page.setViewportSize(original);
}
