// The repository viewer in a real browser (headless Chromium through playwright-core).
// Run by tests/e2e/browser.rs, which starts Kura and pushes the repository read here; exit
// status 0 when every step passed. Screenshots (and the downloaded archives) go to KURA_SHOTS.
//
// Environment: KURA_URL (http://127.0.0.1:PORT), KURA_USER, KURA_PASSWORD, KURA_REPO (alice/app),
// KURA_SHOTS (a directory), KURA_TEST_CHROMIUM (default /usr/bin/chromium), KURA_NEEDLE_LINE (the
// line of src/main.rs holding NEEDLE), KURA_DIFF_COMMIT (the id of the commit titled DIFF_TITLE),
// KURA_RECEIVER (a webhook receiver's URL that the repository's trigger posts to).

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

function env(name, fallback) {
    const v = process.env[name] ?? fallback;
    if (!v) {
        console.error(`viewer.mjs: ${name} is not set`);
        process.exit(2);
    }
    return v;
}

const BASE = env('KURA_URL').replace(/\/+$/, '');
const USER = env('KURA_USER');
const PASSWORD = env('KURA_PASSWORD');
const REPO = env('KURA_REPO');
const SHOTS = env('KURA_SHOTS');
const CHROMIUM = env('KURA_TEST_CHROMIUM', '/usr/bin/chromium');
const NEEDLE_LINE = Number(env('KURA_NEEDLE_LINE'));
const DIFF_COMMIT = env('KURA_DIFF_COMMIT');
const RECEIVER = env('KURA_RECEIVER');
const TIMEOUT_MS = Number(process.env.KURA_BROWSER_TIMEOUT_MS || 150_000);

// What tests/e2e/browser.rs pushed (keep the two in step).
const NEEDLE = 'needle_for_search';
const MARKUP_FILE = '<img src=x onerror=alert(1)>.md';
const MARKUP_BRANCH = 'x<svg/onload=alert(1)>'; // git refuses spaces in branch names
const MARKUP_TITLE = 'Add <b onmouseover=alert(1)>markup</b> & "quotes"';
const DIFF_TITLE = 'Tune the step functions';
const GUIDE_TEXT = 'Read this guide first.';

// --- plumbing --------------------------------------------------------------------------------

const log = (...a) => console.log(...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const problems = []; // guard failures (dialogs, page errors, CSP violations, 5xx)
let allowConfirm = false; // a confirm() is fine while revoking a token, nothing else
let browser, context, page;
let shotCount = 0;
let current = '';

class Failure extends Error {}

function expect(cond, msg) {
    if (!cond) throw new Failure(msg);
}

const isRaw = (url) => url.includes(`/${REPO}/raw/`);

// Every page of a context fails the run on a dialog (script ran), an uncaught error, a CSP
// violation (the page broke its own policy; raw files are meant to be blocked) or a 5xx.
function guard(ctx, label) {
    ctx.on('page', (p) => {
        p.on('dialog', async (d) => {
            if (allowConfirm && d.type() === 'confirm') return d.accept();
            problems.push(`${label}: a ${d.type()} dialog (${JSON.stringify(d.message())}) opened on ${p.url()}: script ran`);
            await d.dismiss().catch(() => {});
        });
        p.on('pageerror', (e) => problems.push(`${label}: uncaught error on ${p.url()}: ${e.message}`));
        p.on('console', (m) => {
            const t = m.text();
            const where = m.location().url || p.url();
            if (isRaw(where)) {
                if (m.type() === 'error') log(`   (console error on a raw file, not fatal: ${t.slice(0, 110)})`);
            } else if (/Content Security Policy|Refused to/i.test(t)) {
                problems.push(`${label}: CSP violation on ${where}: ${t}`);
            } else if (m.type() === 'error') {
                log(`   console error (not fatal) on ${where}: ${t}`);
            }
        });
        p.on('response', (r) => {
            if (r.status() >= 500) problems.push(`${label}: ${r.status()} for ${r.request().method()} ${r.url()}`);
        });
    });
}

const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

// A screenshot (full page unless full: false) after checking the page carries no injected
// event-handler attributes (markup from the repository must arrive as text).
async function shot(name, { full = true, on = page, check = true } = {}) {
    if (check && !isRaw(on.url())) {
        const injected = await on.evaluate(() =>
            [...document.querySelectorAll('[onload],[onerror],[onmouseover]')].map((e) => e.outerHTML.slice(0, 120)));
        expect(injected.length === 0, `elements with event-handler attributes on ${on.url()}: ${injected.join(' | ')}`);
    }
    shotCount += 1;
    const file = path.join(SHOTS, `${String(shotCount).padStart(2, '0')}-${slug(name)}.png`);
    await on.screenshot({ path: file, fullPage: full });
    log(`   screenshot ${path.basename(file)}`);
}

const urlOf = (p = page) => new URL(p.url());
const count = (sel, on = page) => on.locator(sel).count();
const textOf = async (sel, on = page) => (await on.locator(sel).first().innerText()).trim();
const bodyText = (on = page) => on.locator('body').innerText();

// Navigates to BASE + p and checks the status.
async function go(p, status = 200, on = page) {
    const r = await on.goto(BASE + p);
    expect(r, `no response for ${p}`);
    expect(r.status() === status, `GET ${p}: status ${r.status()}, expected ${status}`);
    return r;
}

// Clicks and waits for the resulting document load (a link or a form submission).
async function submit(locator, on = page) {
    await Promise.all([on.waitForEvent('load'), locator.click()]);
}

// Clicks and waits for a URL (a function of the URL object).
async function follow(locator, pred, what) {
    try {
        await Promise.all([page.waitForURL(pred), locator.click()]);
    } catch (e) {
        throw new Failure(`${what}: now at ${page.url()} (${e.message.split('\n')[0]})`);
    }
}

// Polls fn until it returns a truthy value.
async function until(fn, what, ms = 5000) {
    const end = Date.now() + ms;
    for (;;) {
        const v = await fn().catch(() => false);
        if (v) return v;
        if (Date.now() > end) throw new Failure(`timed out after ${ms} ms waiting for: ${what}`);
        await sleep(100);
    }
}

async function visible(sel, on = page) {
    try {
        await on.locator(sel).first().waitFor({ state: 'visible', timeout: 5000 });
    } catch {
        throw new Failure(`${sel} is not visible on ${on.url()}`);
    }
}

const isTarget = (id) => page.evaluate((id) => document.getElementById(id)?.matches(':target') ?? false, id);
const sessionCookie = async () => (await context.cookies(BASE)).find((c) => c.name === 'kura_session');

// GET /api/v1/user outside the browser, with a bearer token; the status.
async function apiStatus(token) {
    const r = await fetch(`${BASE}/api/v1/user`, { headers: { authorization: `Bearer ${token}` } });
    return r.status;
}

// The links in `scope` whose whole text is `text` (a trailing / allowed, for folders).
const reEscape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const link = (scope, text) => page.locator(`${scope} a`).filter({ hasText: new RegExp(`^\\s*${reEscape(text)}/?\\s*$`) }).first();

// --- the steps -------------------------------------------------------------------------------

const steps = [];
const step = (name, fn) => steps.push({ name, fn });

step('anonymous home hides the private repository', async () => {
    await go('/');
    await visible('a#login');
    expect(await count(`a[href="/${REPO}"], a[href^="/${REPO}/"]`) === 0, `${REPO} is linked for an anonymous visitor`);
    expect(!(await bodyText()).includes(REPO), `${REPO} is named for an anonymous visitor`);
    await shot('home anonymous');
});

step('sign in (wrong password, then the right one)', async () => {
    await follow(page.locator('a#login'), (u) => u.pathname === '/login', 'a#login leads to /login');
    await visible('form#login');
    await page.fill('form#login input[name=user]', USER);
    await page.fill('form#login input[name=password]', `wrong-${PASSWORD}`);
    await submit(page.locator('form#login button[type=submit]'));
    await visible('.flash.error');
    expect(urlOf().pathname === '/login', `a wrong password left /login for ${page.url()}`);
    const before = (await sessionCookie())?.value; // a pre-login session is fine, if replaced
    await shot('login wrong password');

    await page.fill('form#login input[name=user]', USER);
    await page.fill('form#login input[name=password]', PASSWORD);
    await submit(page.locator('form#login button[type=submit]'));
    expect(urlOf().pathname === '/', `signing in led to ${page.url()}, expected /`);
    const c = await sessionCookie();
    expect(c, 'no kura_session cookie after signing in');
    expect(c.httpOnly, 'kura_session is not HttpOnly');
    expect(c.sameSite === 'Lax', `kura_session is SameSite=${c.sameSite}, expected Lax`);
    expect(c.value !== before, 'kura_session kept its pre-login value (session fixation)');
    expect(!(await page.evaluate(() => document.cookie)).includes('kura_session'), 'kura_session readable by script');
    await shot('home signed in');
});

step('repository list and filter', async () => {
    const repoLink = `ul#repos a.repo[href="/${REPO}"]`;
    await visible(repoLink);
    const input = 'form#filter-form input#filter';
    for (const [q, listed] of [['app', true], ['zzz', false]]) {
        await page.fill(input, q);
        await Promise.all([page.waitForURL((u) => u.searchParams.get('q') === q), page.press(input, 'Enter')]);
        const n = await count(repoLink);
        expect(listed ? n === 1 : n === 0, `filter ${q}: ${REPO} ${listed ? 'not listed' : 'still listed'}`);
        await shot(`filter ${q}`);
    }
});

step('repository page: clone URL, README, files, navigation', async () => {
    await go('/');
    await follow(page.locator(`ul#repos a.repo[href="/${REPO}"]`), (u) => u.pathname === `/${REPO}`, 'the repository link');

    const clone = await page.inputValue('input#clone-url');
    expect(clone.endsWith(`/${REPO}.git`), `clone URL ${clone}`);
    await page.click('button#copy-clone');
    const copied = await until(() => page.evaluate(() => navigator.clipboard.readText()), 'the clone URL on the clipboard');
    expect(copied === clone, `button#copy-clone copied ${JSON.stringify(copied)}, expected ${clone}`);

    const readme = 'article#readme';
    await visible(readme);
    expect(await count(`${readme} table`) >= 1, 'the README table is not rendered as a <table>');
    expect(await count(`${readme} pre code`) >= 1, 'the README code block is not a pre code');
    expect(await count(`${readme} script`) === 0, 'a <script> element from the README is in the page');
    for (const a of await page.locator(`${readme} a`).all()) {
        const href = (await a.getAttribute('href')) ?? '';
        expect(!/^\s*javascript:/i.test(href), `a javascript: link survived: ${href}`);
    }
    const guide = page.locator(`${readme} a`).filter({ hasText: 'guide' }).first();
    const guideHref = await guide.evaluate((a) => a.href);
    expect(guideHref.includes(`/${REPO}/blob/`) && guideHref.endsWith('docs/guide.md'), `relative link resolved to ${guideHref}`);
    const img = page.locator(`${readme} img[alt=logo]`);
    const src = await img.evaluate((i) => i.src);
    expect(src.includes(`/${REPO}/raw/`) && src.endsWith('img/logo.png'), `relative image resolved to ${src}`);
    await until(() => img.evaluate((i) => i.complete && i.naturalWidth > 0), `the README image ${src} loads`);

    const files = await textOf('table#files');
    for (const f of ['src', 'README.md', MARKUP_FILE]) expect(files.includes(f), `table#files lacks ${f}:\n${files}`);
    for (const part of ['commits', 'branches', 'tags']) {
        expect(await count(`nav#repo-nav a[href^="/${REPO}/${part}"]`) >= 1, `nav#repo-nav has no link to /${REPO}/${part}`);
    }
    await shot('repository page');

    await follow(guide, (u) => u.pathname.endsWith('docs/guide.md'), 'the README link to the guide');
    expect((await bodyText()).includes(GUIDE_TEXT), 'the guide page does not show the guide');
    await shot('guide from the readme');
});

step('tree, blob, line links and range selection', async () => {
    await go(`/${REPO}`);
    await follow(link('table#files', 'src'), (u) => u.pathname === `/${REPO}/tree/main/src`, 'the src folder link');
    const cells = await until(async () => {
        const t = await page.locator('table#files td.last-commit').allInnerTexts();
        return t.length > 0 && t.every((s) => s.trim() !== '') && t;
    }, 'a non-empty td.last-commit in every row');
    log(`   ${cells.length} entries with a last commit`);
    await shot('tree src');

    await follow(link('table#files', 'main.rs'), (u) => u.pathname === `/${REPO}/blob/main/src/main.rs`, 'the main.rs link');
    const blobUrl = page.url();
    expect(await count('table#blob tr#L1') === 1, 'no tr#L1 in table#blob');
    expect(await count('table#blob td.code span[class]') > 0, 'no highlighting (span with a class) in td.code');
    for (const id of ['raw', 'blame', 'history']) expect(await count(`a#${id}`) === 1, `no a#${id}`);
    await page.locator('table#blob a[href="#L10"]').first().click();
    await until(async () => urlOf().hash === '#L10' && (await isTarget('L10')), 'URL #L10 and tr#L10 :target');
    await shot('blob line 10', { full: false });

    // a shared link to a range, opened fresh
    await page.goto('about:blank');
    await page.goto(`${blobUrl}#L10-L20`);
    await until(() => page.evaluate(() => {
        const sel = (n) => document.getElementById(`L${n}`)?.classList.contains('selected');
        for (let n = 10; n <= 20; n++) if (!sel(n)) return false;
        return !sel(9) && !sel(21);
    }), 'rows L10..L20 (and only they) have class selected');
    await shot('blob lines 10-20', { full: false });
});

step('search: content and file names', async () => {
    const search = async (q) => {
        await go(`/${REPO}`);
        await page.fill('form#search input[name=q]', q);
        await Promise.all([
            page.waitForURL((u) => u.pathname === `/${REPO}/search` && u.searchParams.get('q') === q),
            page.press('form#search input[name=q]', 'Enter'),
        ]);
    };
    await search(NEEDLE);
    const marks = await page.locator('section#results .file-match mark').allInnerTexts();
    expect(marks.some((m) => m.includes(NEEDLE)), `no mark with ${NEEDLE} in section#results .file-match (marks: ${JSON.stringify(marks)})`);
    const hit = page.locator(`section#results a[href*="/${REPO}/blob/"][href*="#L"]`).first();
    const href = await hit.getAttribute('href');
    expect(href.endsWith(`src/main.rs#L${NEEDLE_LINE}`), `the match links to ${href}, expected src/main.rs#L${NEEDLE_LINE}`);
    await shot('search content');
    await follow(hit, (u) => u.pathname.endsWith('/src/main.rs') && u.hash === `#L${NEEDLE_LINE}`, 'the search hit');
    await until(() => isTarget(`L${NEEDLE_LINE}`), `tr#L${NEEDLE_LINE} :target`);
    await shot('search hit', { full: false });

    await search('main.rs');
    const hrefs = await page.locator('ul#file-results a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    expect(hrefs.some((h) => h.includes(`/${REPO}/blob/`) && h.endsWith('src/main.rs')), `ul#file-results has no link to src/main.rs: ${JSON.stringify(hrefs)}`);
    await shot('search file names');
});

step('history, commit, diff and blame', async () => {
    await go(`/${REPO}`);
    await follow(page.locator(`nav#repo-nav a[href^="/${REPO}/commits"]`).first(), (u) => u.pathname.startsWith(`/${REPO}/commits`), 'the commits link');
    const titles = (await page.locator('ol#commits li.commit a.title').allInnerTexts()).map((t) => t.trim());
    expect(titles.includes(MARKUP_TITLE), `the markup commit title is not shown as text; titles: ${JSON.stringify(titles)}`);
    expect(titles.includes(DIFF_TITLE), `no commit titled ${DIFF_TITLE}; titles: ${JSON.stringify(titles)}`);
    expect(await count('ol#commits a.title b') === 0, 'a <b> element from a commit message');
    await shot('history');

    const title = (t) => page.locator('ol#commits li.commit a.title').filter({ hasText: t }).first();
    await follow(title(MARKUP_TITLE), (u) => /\/commit\/[0-9a-f]{7,40}$/.test(u.pathname), 'the markup commit');
    expect((await textOf('#commit-message')).includes(MARKUP_TITLE), 'the markup commit message is not shown as text');
    await shot('markup commit');

    await page.goBack();
    await follow(title(DIFF_TITLE), (u) => u.pathname.startsWith(`/${REPO}/commit/`), 'the newest commit touching main.rs');
    const id = urlOf().pathname.split('/').pop();
    expect(DIFF_COMMIT.startsWith(id), `the commit page is for ${id}, expected ${DIFF_COMMIT}`);
    expect((await textOf('#commit-message')).includes(DIFF_TITLE), '#commit-message lacks the title');
    const diff = 'section#diff div.file table.diff';
    expect(await count(`${diff} tr.add`) > 0, `no added lines (${diff} tr.add)`);
    expect(await count(`${diff} tr.del`) > 0, `no removed lines (${diff} tr.del)`);
    await shot('commit diff');

    await go(`/${REPO}/blob/main/src/main.rs`);
    await follow(page.locator('a#history'), (u) => u.pathname.startsWith(`/${REPO}/commits/`), 'a#history');
    const fileTitles = await page.locator('ol#commits li.commit a.title').allInnerTexts();
    expect(fileTitles.some((t) => t.includes(DIFF_TITLE)), `a#history does not list ${DIFF_TITLE}`);
    await shot('file history');

    await go(`/${REPO}/blame/main/src/main.rs`);
    await visible('table#blame');
    await shot('blame', { full: false });
});

step('branches and tags', async () => {
    await go(`/${REPO}`);
    await follow(page.locator(`nav#repo-nav a[href^="/${REPO}/branches"]`).first(), (u) => u.pathname === `/${REPO}/branches`, 'the branches link');
    const branches = await textOf('table#branches');
    for (const b of ['main', 'release/1.0', MARKUP_BRANCH]) expect(branches.includes(b), `table#branches lacks ${b}:\n${branches}`);
    await shot('branches');

    await follow(page.locator('table#branches a').filter({ hasText: MARKUP_BRANCH }).first(),
        (u) => u.pathname.startsWith(`/${REPO}/tree/`), 'the markup branch link');
    expect(decodeURIComponent(urlOf().pathname).includes(MARKUP_BRANCH), `the markup branch link led to ${page.url()}`);
    await visible('table#files');
    await shot('markup branch tree');

    await go(`/${REPO}/tree/release/1.0`);
    await visible('table#files');
    await shot('release branch tree');

    await go(`/${REPO}`);
    await follow(page.locator(`nav#repo-nav a[href^="/${REPO}/tags"]`).first(), (u) => u.pathname === `/${REPO}/tags`, 'the tags link');
    expect((await textOf('table#tags')).includes('v1.0'), 'table#tags lacks v1.0');
    await shot('tags');
});

step('archives download', async () => {
    await go(`/${REPO}`);
    for (const [sel, ext, magic] of [['a#archive-tar-gz', '.tar.gz', [0x1f, 0x8b]], ['a#archive-zip', '.zip', [0x50, 0x4b]]]) {
        const [dl] = await Promise.all([page.waitForEvent('download'), page.click(sel)]);
        const name = dl.suggestedFilename();
        expect(name.endsWith(ext), `${sel} downloads ${JSON.stringify(name)}, expected *${ext}`);
        const file = path.join(SHOTS, `archive${ext}`);
        await dl.saveAs(file);
        const failure = await dl.failure();
        expect(!failure, `${sel}: the download failed: ${failure}`);
        const bytes = fs.readFileSync(file);
        expect(bytes.length > 0 && magic.every((b, i) => bytes[i] === b), `${name}: ${bytes.length} bytes starting ${bytes.subarray(0, 4).toString('hex')}`);
        log(`   ${sel}: ${name}, ${bytes.length} bytes`);
    }
});

step('untrusted content stays inert', async () => {
    for (const f of ['evil.html', 'evil.svg']) {
        const r = await go(`/${REPO}/raw/main/${f}`);
        const h = r.headers();
        expect(h['x-content-type-options'] === 'nosniff', `raw ${f}: x-content-type-options ${h['x-content-type-options']}`);
        expect((h['content-security-policy'] ?? '').includes('sandbox'), `raw ${f}: content-security-policy ${h['content-security-policy']}`);
        await sleep(500);
        await shot(`raw ${f}`, { full: false }); // a full-page capture of a bare SVG document hangs
    }
    for (const f of ['evil.html', 'evil.svg', 'README.md', encodeURIComponent(MARKUP_FILE)]) {
        await go(`/${REPO}/blob/main/${f}`);
        await sleep(500);
        await shot(`blob ${decodeURIComponent(f)}`);
    }
    expect((await bodyText()).includes(MARKUP_FILE), 'the markup-named file\'s page does not show its name as text');
});

step('settings: create, use and revoke a token', async () => {
    await go('/settings');
    const ids = () => page.locator('table#tokens tr[data-token-id]').evaluateAll((trs) => trs.map((tr) => tr.dataset.tokenId));
    const before = await ids();
    await page.selectOption('form#new-token select[name=scope]', 'read');
    await page.fill('form#new-token input[name=expires_in]', '30d');
    await submit(page.locator('form#new-token [type=submit]').first());
    await visible('code#new-token-value');
    const token = await textOf('code#new-token-value');
    expect(token.length >= 20, `the new token is ${JSON.stringify(token)}`);
    await shot('token created');
    const ok = await apiStatus(token);
    expect(ok === 200, `GET /api/v1/user with the new token: ${ok}`);

    await go('/settings');
    const fresh = (await ids()).filter((id) => !before.includes(id));
    expect(fresh.length === 1, `expected one new row in table#tokens, found ${JSON.stringify(fresh)} (before: ${JSON.stringify(before)})`);
    const row = `table#tokens tr[data-token-id="${fresh[0]}"]`;
    allowConfirm = true;
    try {
        await submit(page.locator(`${row} form.revoke button`));
    } finally {
        allowConfirm = false;
    }
    expect(await count(row) === 0, `token ${fresh[0]} still listed after revoking`);
    const gone = await apiStatus(token);
    expect(gone === 401, `GET /api/v1/user with the revoked token: ${gone}`);
    for (const sel of ['form#password input[name=current]', 'form#password input[name=new]']) {
        expect(await count(sel) === 1, `no ${sel}`);
    }
    await shot('token revoked');
});

step('missing and private repositories look the same', async () => {
    await go(`/${USER}/nope`, 404);
    const missing = await textOf('h1');
    await shot('missing repository');
    const anon = await browser.newContext(contextOptions);
    guard(anon, 'anonymous');
    try {
        const p = await anon.newPage();
        await go(`/${REPO}`, 404, p);
        const hidden = await textOf('h1', p);
        expect(hidden === missing, `h1 differs: missing ${JSON.stringify(missing)}, private ${JSON.stringify(hidden)}`);
        await shot('private repository anonymous', { on: p });
        await go(`/${REPO}/raw/main/README.md`, 404, p);
    } finally {
        await anon.close();
    }
});

step('push triggers: deliveries, attempts, redeliver, add and remove a webhook', async () => {
    await go(`/${REPO}/settings/triggers`);
    const delivered = 'table#deliveries tr[data-status="delivered"]';
    expect(await count(delivered) >= 4, `the pushes' deliveries listed as delivered: ${await count(delivered)}`);
    await shot('triggers');
    // one delivery: its attempt with the receiver's answer
    await follow(page.locator(`${delivered} td a`).first(), (u) => /\/settings\/triggers\/deliveries\/\d+$/.test(u.pathname), 'a delivery page');
    expect(await count('#attempts tr.attempt') === 1, 'one attempt');
    await page.locator('#event summary').click();
    await visible('#event pre');
    await shot('a delivery');
    await submit(page.locator('#delivery form.redeliver button'));
    expect(/redelivered=\d+/.test(urlOf().search), `redeliver lands back on the list: ${page.url()}`);
    await visible('p.flash.ok');
    // a second webhook through the form, then removed
    const before = await count('table#triggers tr[data-trigger-id]');
    await page.fill('form#new-trigger input[name=url]', RECEIVER);
    await page.fill('form#new-trigger input[name=paths]', 'docs/**');
    await page.fill('form#new-trigger input[name=secret]', 'browser-secret-123');
    await submit(page.locator('form#new-trigger [type=submit]'));
    await visible('p.flash.ok');
    expect(await count('table#triggers tr[data-trigger-id]') === before + 1, 'the new trigger is listed');
    expect(!(await bodyText()).includes('browser-secret-123'), 'the secret is never shown');
    await shot('trigger added');
    await submit(page.locator('table#triggers tr[data-trigger-id] form.remove button').last());
    expect(await count('table#triggers tr[data-trigger-id]') === before, 'the trigger is removed');
});

step('sign out', async () => {
    const old = await sessionCookie();
    expect(old, 'no kura_session cookie before signing out');
    await go('/');
    await submit(page.locator('form#logout button'));
    await visible('a#login');
    await shot('signed out');
    await page.goto(`${BASE}/settings`);
    expect(urlOf().pathname === '/login', `/settings after signing out led to ${page.url()}`);
    // the old cookie, replayed, must be dead on the server too
    const replay = await browser.newContext(contextOptions);
    guard(replay, 'replayed cookie');
    try {
        await replay.addCookies([old]);
        const p = await replay.newPage();
        await p.goto(`${BASE}/settings`);
        expect(urlOf(p).pathname === '/login', `the session cookie still works after signing out (${p.url()})`);
    } finally {
        await replay.close();
    }
});

// --- run -------------------------------------------------------------------------------------

const contextOptions = { viewport: { width: 1366, height: 850 }, acceptDownloads: true };

async function main() {
    fs.mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    log(`Chromium ${browser.version()}, Kura at ${BASE}, screenshots in ${SHOTS}`);
    context = await browser.newContext(contextOptions);
    context.setDefaultTimeout(10_000);
    context.setDefaultNavigationTimeout(20_000);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
    guard(context, 'browser');
    page = await context.newPage();

    const passed = [];
    let failed = null;
    for (const [i, s] of steps.entries()) {
        current = `${String(i + 1).padStart(2, '0')} ${s.name}`;
        log(`\n== ${current}`);
        const t0 = Date.now();
        try {
            await s.fn();
            await sleep(100); // late events (dialogs, errors) belong to this step
            expect(problems.length === 0, problems.join('\n'));
            passed.push(`${current} (${Date.now() - t0} ms)`);
            log(`   ok (${Date.now() - t0} ms)`);
        } catch (e) {
            if (problems.length) e.message += `\n${problems.join('\n')}`;
            failed = { step: current, error: e };
            await shot(`FAILED ${s.name}`, { check: false, full: !isRaw(page.url()) }).catch(() => {});
            break;
        }
    }
    await browser.close();
    log(`\n${passed.length} of ${steps.length} steps passed:`);
    for (const p of passed) log(`  ok ${p}`);
    if (failed) {
        const detail = failed.error instanceof Failure ? failed.error.message : failed.error.stack;
        console.error(`FAILED ${failed.step} (at ${page.url()}):\n${detail}`);
        return 1;
    }
    return 0;
}

const timer = setTimeout(async () => {
    console.error(`viewer.mjs: timed out after ${TIMEOUT_MS} ms in step ${current}`);
    await Promise.race([browser?.close(), sleep(5000)]).catch(() => {});
    process.exit(1);
}, TIMEOUT_MS);

main().then(
    (code) => {
        clearTimeout(timer);
        process.exitCode = code;
    },
    (e) => {
        clearTimeout(timer);
        console.error(`viewer.mjs: ${e.stack}`);
        process.exitCode = 1;
    },
);
