// Drives a GraphQL subscription in the playground (GET /graphql) in headless Chromium, as
// a person would: `subscription { onCreateBrand { name } }` typed into GraphiQL's editor,
// the run button, then a brand created through the API from the page itself (a fetch, as
// another client would), and the event read from the result pane, where GraphiQL shows a
// subscription's latest payload. With PLAYGROUND_AUTHORIZATION set, that value is first
// typed into GraphiQL's header editor as the Authorization header, as a signed-in user
// does. For tests/test_playground_browser.py.
//
//   node subscription.mjs <page url> <graphql url> <screenshot.png> <fresh user-data-dir> [chromium]
//
// Nothing but 127.0.0.1 is reachable, as in playground.mjs: every other host goes to a
// proxy that is not there (127.0.0.1:9) and resolves to nothing, and a route aborts any
// request the page still makes elsewhere. What the page asked for (WebSockets included)
// is printed (one JSON object) for the test to check, along with the result and any
// console error.
import { TIMEOUT, isLocal, launchOffline } from './offline.mjs';

const [pageUrl, graphqlUrl, screenshot, userDataDir, executablePath = '/usr/bin/chromium'] =
  process.argv.slice(2);
if (!pageUrl || !graphqlUrl || !screenshot || !userDataDir) {
  console.error(
    'usage: node subscription.mjs <page url> <graphql url> <screenshot.png> <user-data-dir> [chromium]',
  );
  process.exit(2);
}

const SUBSCRIPTION = 'subscription { onCreateBrand { name } }';
const MUTATION = 'mutation { createBrand(input: {name: "Acme"}) { id } }';
const EXPECTED = '"Acme"';
const SETTLE_MS = 1_000; // for the subscription to be registered before the event
const AUTHORIZATION = process.env.PLAYGROUND_AUTHORIZATION;

const context = await launchOffline(userDataDir, executablePath);

const report = {
  requests: [],
  offMachine: [],
  websockets: [],
  websocketFrames: { sent: [], received: [] },
  consoleErrors: [],
  pageErrors: [],
  typedQuery: null,
  settings: null,
  mutation: null,
  result: null,
  resultText: null,
  title: null,
  screenshot,
};

try {
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLocal(url)) return route.continue();
    report.offMachine.push(url);
    return route.abort('blockedbyclient');
  });

  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  page.on('request', (request) => {
    report.requests.push({ method: request.method(), url: request.url() });
  });
  page.on('websocket', (socket) => {
    report.websockets.push(socket.url());
    socket.on('framesent', ({ payload }) => report.websocketFrames.sent.push(String(payload)));
    socket.on('framereceived', ({ payload }) =>
      report.websocketFrames.received.push(String(payload)),
    );
  });
  page.on('console', (message) => {
    if (message.type() === 'error') report.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => report.pageErrors.push(String(error)));

  await page.goto(pageUrl, { waitUntil: 'load' });
  report.title = await page.title();
  report.settings = await page.evaluate(() => {
    const element = document.getElementById('playground-settings');
    return element ? JSON.parse(element.textContent || '{}') : null;
  });
  const queryEditor = page.locator('.graphiql-query-editor .CodeMirror');
  await queryEditor.waitFor({ state: 'visible' });

  if (AUTHORIZATION) {
    await page.locator('button[data-name="headers"]').click();
    const headerEditor = page.locator(
      '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror',
    );
    await headerEditor.waitFor({ state: 'visible' });
    await headerEditor.evaluate(
      (element, value) => element.CodeMirror.setValue(JSON.stringify({ Authorization: value })),
      AUTHORIZATION,
    );
  }

  // The subscription, typed into the query editor, then run with the run button.
  await queryEditor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type(SUBSCRIPTION);
  await page.keyboard.press('Escape'); // closes the completion list, if it opened
  report.typedQuery = await queryEditor.evaluate((element) => element.CodeMirror.getValue());
  // GraphiQL parses the editor's text on a 100 ms debounce (editor.documentAST), and its
  // fetcher picks graphql-ws only when that parsed document is a subscription: run before
  // it caught up with the last keystroke and the operation goes over HTTP (where the
  // server rightly refuses it). So wait until what it parsed is what was typed.
  await page.waitForFunction(
    () => {
      const editor = document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror;
      const parsed = editor?.documentAST;
      return Boolean(
        parsed && parsed.loc?.source.body === editor.getValue() &&
          parsed.definitions.some((definition) => definition.operation === 'subscription'),
      );
    },
    null,
    { timeout: TIMEOUT },
  );
  await page.locator('.graphiql-execute-button').click();

  // The subscription is running (GraphiQL sent its subscribe message, and the server had a
  // moment to register it), then a brand is created, from the page.
  const deadline = Date.now() + TIMEOUT;
  while (!report.websocketFrames.sent.some((frame) => frame.includes('"subscribe"'))) {
    if (Date.now() > deadline) throw new Error('GraphiQL sent no subscribe message');
    await page.waitForTimeout(50);
  }
  await page.waitForTimeout(SETTLE_MS);
  report.mutation = await page.evaluate(
    async ([url, query]) => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
      });
      return { status: response.status, body: await response.json() };
    },
    [graphqlUrl, MUTATION],
  );

  const response = page.locator('.graphiql-response .CodeMirror');
  await page.waitForFunction(
    (expected) => {
      const editor = document.querySelector('.graphiql-response .CodeMirror');
      return editor && editor.CodeMirror.getValue().includes(expected);
    },
    EXPECTED,
    { timeout: TIMEOUT },
  );
  const text = await response.evaluate((element) => element.CodeMirror.getValue());
  report.result = JSON.parse(text);
  report.resultText = await response.innerText(); // what the pane shows
  await page.screenshot({ path: screenshot, fullPage: true });
} catch (error) {
  // What the socket and the mutation did, for the failure message: the test shows only this.
  report.error = [
    String(error.stack || error),
    `websockets: ${JSON.stringify(report.websockets)}`,
    `frames: ${JSON.stringify(report.websocketFrames)}`,
    `mutation: ${JSON.stringify(report.mutation)}`,
    `console errors: ${JSON.stringify(report.consoleErrors)}`,
  ].join('\n');
  const page = context.pages()[0];
  if (page) await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
} finally {
  await context.close();
}

process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(report.error ? 1 : 0);
