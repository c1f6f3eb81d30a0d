// Drives the GraphQL playground (GET /graphql) in headless Chromium, as a person would:
// a header in GraphiQL's header editor, a query typed into its editor, the run button,
// the result read from the result pane, and a screenshot. For tests/test_playground_browser.py.
//
//   node playground.mjs <page url> <screenshot.png> <fresh user-data-dir> [chromium]
//
// Nothing but 127.0.0.1 is reachable: every other host goes to a proxy that is not there
// (127.0.0.1:9) and resolves to nothing, and a route aborts any request the page still
// makes elsewhere. What the page asked for is printed (one JSON object) for the test to
// check, along with the result and any console error.
import { TIMEOUT, isLocal, launchOffline } from './offline.mjs';

const [pageUrl, screenshot, userDataDir, executablePath = '/usr/bin/chromium'] =
  process.argv.slice(2);
if (!pageUrl || !screenshot || !userDataDir) {
  console.error('usage: node playground.mjs <page url> <screenshot.png> <user-data-dir> [chromium]');
  process.exit(2);
}

const QUERY = '{ __typename }';
const HEADER = { name: 'x-playground-check', value: 'offline' };

const context = await launchOffline(userDataDir, executablePath);

const report = {
  requests: [],
  offMachine: [],
  consoleErrors: [],
  pageErrors: [],
  blockCheck: null,
  typedQuery: null,
  typedHeaders: null,
  sentHeader: null,
  operationUrl: null,
  result: null,
  resultText: null,
  title: null,
  screenshot,
};

// The block itself, checked first: a name that resolves nowhere, asked through the dead
// proxy (let past the route for this one URL); it must fail at the proxy.
const PROBE = 'http://playground-offline-check.invalid/';

try {
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLocal(url) || url === PROBE) return route.continue();
    report.offMachine.push(url);
    return route.abort('blockedbyclient');
  });

  const check = await context.newPage();
  try {
    await check.goto(PROBE, { timeout: TIMEOUT });
    report.blockCheck = 'loaded';
  } catch (error) {
    report.blockCheck = String(error.message).split('\n')[0];
  }
  await check.close();

  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  page.on('request', (request) => {
    const entry = { method: request.method(), url: request.url() };
    report.requests.push(entry);
    const body = request.postData() || '';
    if (request.method() === 'POST' && body.includes('__typename') && !body.includes('IntrospectionQuery')) {
      report.sentHeader = request.headers()[HEADER.name] ?? null;
      report.operationUrl = request.url();
    }
  });
  page.on('console', (message) => {
    if (message.type() === 'error') report.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => report.pageErrors.push(String(error)));

  await page.goto(pageUrl, { waitUntil: 'load' });
  report.title = await page.title();
  const queryEditor = page.locator('.graphiql-query-editor .CodeMirror');
  await queryEditor.waitFor({ state: 'visible' });

  // A header, typed into GraphiQL's header editor.
  await page.locator('button[data-name="headers"]').click();
  const headerEditor = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror');
  await headerEditor.waitFor({ state: 'visible' });
  await headerEditor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.type(`{"${HEADER.name}": "${HEADER.value}"`);
  report.typedHeaders = await headerEditor.evaluate((element) => element.CodeMirror.getValue());

  // The query, typed into the query editor, then run with the run button.
  await queryEditor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type(QUERY);
  await page.keyboard.press('Escape'); // closes the completion list, if it opened
  report.typedQuery = await queryEditor.evaluate((element) => element.CodeMirror.getValue());
  await page.locator('.graphiql-execute-button').click();

  const response = page.locator('.graphiql-response .CodeMirror');
  await page.waitForFunction(
    () => {
      const editor = document.querySelector('.graphiql-response .CodeMirror');
      return editor && editor.CodeMirror.getValue().includes('"data"');
    },
    null,
    { timeout: TIMEOUT },
  );
  const text = await response.evaluate((element) => element.CodeMirror.getValue());
  report.result = JSON.parse(text);
  report.resultText = await response.innerText(); // what the pane shows
  await page.screenshot({ path: screenshot, fullPage: true });
} catch (error) {
  report.error = String(error.stack || error);
  const page = context.pages()[0];
  if (page) await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
} finally {
  await context.close();
}

process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(report.error ? 1 : 0);
