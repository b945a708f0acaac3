#!/usr/bin/env node
// Runs the extension's integration tests inside a real VS Code: starts code-server on 127.0.0.1 (auth off, smoke
// test driver on), opens it in Debian's Chromium driven headless by playwright-core, and loads the workbench with
// the extensionDevelopmentPath / extensionTestsPath payload, so the tests in suite/ run in code-server's real
// extension host. The exit code comes from the workbench's codeAutomationExit. Prints one line per test and
// `N passed, N failed`.
//
// Environment: LLM_SIDECAR_BIN (the sidecar), CODE_SERVER (its package folder), NODE24 (the node binary that runs
// it), CHROMIUM (default /usr/bin/chromium), LLM_SIDECAR_TEST_TIMEOUT_MS (default 600000).
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { chromium } = require('playwright-core');

const root = path.resolve(__dirname, '..', '..');
const BIN = process.env.LLM_SIDECAR_BIN;
const CODE_SERVER = process.env.CODE_SERVER;
const NODE24 = process.env.NODE24;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.LLM_SIDECAR_TEST_TIMEOUT_MS || 600_000);

function die(message) {
  console.error(`driver: ${message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function get(url) {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(0));
    req.setTimeout(5000, () => req.destroy());
  });
}

async function waitForServer(url, child, limitMs) {
  const start = Date.now();
  while (Date.now() - start < limitMs) {
    if (child.exitCode !== null) throw new Error(`code-server exited with code ${child.exitCode}`);
    if ((await get(url)) === 200) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`code-server did not answer on ${url} within ${limitMs} ms`);
}

async function main() {
  for (const [name, value] of Object.entries({ LLM_SIDECAR_BIN: BIN, CODE_SERVER, NODE24 })) {
    if (!value || !fs.existsSync(value)) die(`${name} is not set or does not exist (${value})`);
  }
  if (!fs.existsSync(CHROMIUM)) die(`no Chromium at ${CHROMIUM}`);
  if (!fs.existsSync(path.join(root, 'out', 'extension.js'))) die('the extension is not built (npm run build)');

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'llm-sidecar-vscode-it-'));
  const userData = path.join(work, 'user-data');
  const results = path.join(work, 'results.jsonl');
  // The ghost texts the driver sees in the page, one JSON string a line, for the tests to wait on.
  const ghostFile = path.join(work, 'ghost-text.jsonl');
  const workspace = path.join(work, 'workspace');
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.mkdirSync(workspace);
  fs.writeFileSync(path.join(workspace, 'README.md'), '# test workspace\n');
  // Quiet, offline user settings: no welcome page, no trust prompt, no update or gallery checks, no AI features.
  fs.writeFileSync(
    path.join(userData, 'User', 'settings.json'),
    JSON.stringify(
      {
        'workbench.startupEditor': 'none',
        'security.workspace.trust.enabled': false,
        'telemetry.telemetryLevel': 'off',
        'update.mode': 'none',
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'workbench.enableExperiments': false,
        'chat.disableAIFeatures': true,
        'workbench.tips.enabled': false,
        'git.enabled': false,
      },
      null,
      2,
    ),
  );
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  fs.writeFileSync(path.join(work, 'config.yaml'), `bind-addr: ${host}\nauth: none\ncert: false\n`);
  const serverLog = path.join(work, 'code-server.log');
  const logFd = fs.openSync(serverLog, 'a');
  const env = {
    ...process.env,
    LLM_SIDECAR_BIN: BIN,
    LLM_SIDECAR_TEST_RESULTS: results,
    LLM_SIDECAR_GHOST_SEEN: ghostFile,
    // A key in the environment, for llmSidecar.customEngineTokenEnv.
    LLM_SIDECAR_TEST_KEY: 'sk-from-env',
    // The extension gallery is pointed at a closed loopback port: the tests reach no other host.
    EXTENSIONS_GALLERY: JSON.stringify({ serviceUrl: 'http://127.0.0.1:9/gallery', itemUrl: 'http://127.0.0.1:9/item' }),
    PATH: `${path.dirname(NODE24)}:${process.env.PATH}`,
  };
  delete env.VSCODE_IPC_HOOK_CLI;
  const child = spawn(
    NODE24,
    [
      path.join(CODE_SERVER, 'out', 'node', 'entry.js'),
      '--config', path.join(work, 'config.yaml'),
      '--user-data-dir', userData,
      '--extensions-dir', path.join(work, 'extensions'),
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--vscode-option', 'enable-smoke-test-driver',
      workspace,
    ],
    { env, stdio: ['ignore', logFd, logFd], detached: true },
  );
  const started = Date.now();
  let browser;
  let exitCode = 1;
  let statusSeen = 0;
  const ghostSeen = new Set();
  const clicked = [];
  let passed = 0;
  let failed = 0;
  const cleanup = async () => {
    if (browser) await browser.close().catch(() => undefined);
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    await new Promise((r) => setTimeout(r, 500));
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  process.on('SIGTERM', () => void cleanup().then(() => process.exit(143)));

  try {
    await waitForServer(`http://${host}/healthz`, child, 120_000);
    console.log(`driver: code-server up on ${host} after ${Date.now() - started} ms`);

    // A fresh profile (Playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(path.join(work, 'chromium-profile'), {
      executablePath: CHROMIUM,
      viewport: { width: 1400, height: 900 },
      // Chromium's crash-report folder goes under the run's folder, not ~/.config.
      env: { ...process.env, XDG_CONFIG_HOME: path.join(work, 'xdg-config'), HOME: work },
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // Loopback only: every other host name fails to resolve inside the browser.
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      ],
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    const consoleLog = path.join(work, 'browser-console.log');
    page.on('console', (m) => fs.appendFileSync(consoleLog, `${m.type()}: ${m.text()}\n`));
    page.on('pageerror', (e) => fs.appendFileSync(consoleLog, `pageerror: ${e.message}\n`));

    let resolveExit;
    const exited = new Promise((r) => (resolveExit = r));
    await page.exposeFunction('codeAutomationExit', (code) => resolveExit(code));
    await page.exposeFunction('codeAutomationLog', (type, args) => {
      const line = Array.isArray(args) ? args.join(' ') : String(args);
      fs.appendFileSync(consoleLog, `[${type}] ${line}\n`);
    });

    const payload = [
      ['extensionDevelopmentPath', `vscode-remote://${host}${root}`],
      ['extensionTestsPath', `vscode-remote://${host}${path.join(root, 'test', 'integration', 'suite', 'index.js')}`],
    ];
    const url = `http://${host}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    await page.goto(url);

    // A user's hand: click "Use suggested path" on the notification the wrong-JsonPath tests expect.
    let stop = false;
    const clicker = (async () => {
      while (!stop) {
        try {
          // With the smoke test driver on, the workbench shows no toasts: notifications are in the notification
          // center, which the test opens (notifications.showList). Toasts use the same list items.
          const toast = page.locator('.notification-list-item', { hasText: 'Suggested path:' });
          const button = toast.locator('.monaco-button', { hasText: 'Use suggested path' }).first();
          if (await button.count()) {
            const text = (await toast.first().innerText()).replace(/\s+/g, ' ').trim();
            await button.click({ timeout: 5000 });
            clicked.push(text);
            console.log(`driver: clicked "Use suggested path" on: ${text.slice(0, 200)}`);
          }
        } catch {
          /* the page may be navigating or the toast gone */
        }
        try {
          // The status-bar item while an answer streams, as a user sees it.
          if (!statusSeen && (await page.locator('.statusbar-item', { hasText: 'LLM: answering' }).count())) {
            statusSeen = Date.now() - started;
            console.log('driver: the status bar shows "LLM: answering"');
          }
        } catch {
          /* navigating */
        }
        try {
          // Ghost text as a user sees it: the editor's inline-suggestion decorations.
          // The suggestion is drawn in pieces (one span per token, one element per extra line): joined in page
          // order, whitespace left out.
          const parts = await page
            .locator('.ghost-text-decoration, .ghost-text-decoration-preview, .ghost-text')
            .evaluateAll((els) => els.filter((e) => !els.some((o) => o !== e && o.contains(e))).map((e) => e.textContent || ''));
          {
            const text = parts.join('').replace(/\s+/g, '');
            if (text && !ghostSeen.has(text)) {
              ghostSeen.add(text);
              fs.appendFileSync(ghostFile, JSON.stringify(text) + '\n');
              console.log(`driver: ghost text shown: ${text.slice(0, 120)}`);
            }
          }
        } catch {
          /* navigating */
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    })();

    const timeout = new Promise((r) => setTimeout(() => r('timeout'), TIMEOUT_MS));
    const code = await Promise.race([exited, timeout]);
    stop = true;
    await clicker;
    if (code === 'timeout') {
      await page.screenshot({ path: path.join(work, 'timeout.png') }).catch(() => undefined);
      console.log(`driver: the tests did not finish within ${TIMEOUT_MS} ms (screenshot in ${work})`);
      exitCode = 1;
    } else {
      exitCode = Number(code);
    }
  } catch (err) {
    console.log(`driver: ${err && err.stack ? err.stack : err}`);
    exitCode = 1;
  } finally {
    await cleanup();
  }

  const records = fs.existsSync(results)
    ? fs.readFileSync(results, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    : [];
  if (records.length > 0) {
    // Checked in the browser by the driver itself.
    records.push({
      name: 'the status bar shows "LLM: answering" while an answer streams (seen in the browser)',
      ok: Boolean(statusSeen),
      ms: 0,
      error: 'no status-bar item with "LLM: answering" was seen while the tests ran',
    });
    records.push({
      name: 'the notification center shows the no_match notification with "Use suggested path" (clicked in the browser)',
      ok: clicked.length >= 2 && clicked.every((t) => t.includes('$.choices[0].delta.content')),
      ms: 0,
      error: `clicked ${clicked.length} time(s): ${JSON.stringify(clicked)}`,
    });
  }
  for (const r of records) {
    if (r.ok) passed++;
    else failed++;
    console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name} (${r.ms} ms)`);
    if (!r.ok) console.log(`     ${String(r.error).split('\n').slice(0, 8).join('\n     ')}`);
  }
  if (records.length === 0) {
    failed++;
    console.log('driver: no test reported a result');
  }
  if (exitCode !== 0 && failed === 0) {
    failed++;
    console.log(`driver: the extension host exited with code ${exitCode}`);
  }
  if (failed > 0) {
    console.log(`driver: logs kept in ${work} (code-server.log, browser-console.log)`);
  } else {
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log(`integration (code-server, ${((Date.now() - started) / 1000).toFixed(1)} s):`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 || exitCode !== 0 ? 1 : 0);
}

main().catch((err) => die(err && err.stack ? err.stack : String(err)));
