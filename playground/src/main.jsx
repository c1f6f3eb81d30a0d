// GET /graphql's playground: GraphiQL with the explorer plugin, its header editor and,
// once the server offers them, subscriptions over graphql-ws. Everything it needs is in
// this bundle, inlined into the page by chalicelib/graphql/playground.py.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { explorerPlugin } from '@graphiql/plugin-explorer';
import { GraphiQL } from 'graphiql';
import { createRoot } from 'react-dom/client';

import 'graphiql/style.css';
import '@graphiql/plugin-explorer/style.css';

// The page's own settings (playground.py writes them as JSON): where operations and
// subscriptions go, and what the header editor starts with.
function settings() {
  const element = document.getElementById('playground-settings');
  return element ? JSON.parse(element.textContent || '{}') : {};
}

// The page's own address, or an address relative to it (GET /playground sends to
// graphql beside it), so that any host, port or API Gateway stage prefix works.
function graphqlUrl(address) {
  const page = window.location.origin + window.location.pathname;
  return address ? new URL(address, page).toString() : page;
}

// graphql-ws needs ws: or wss:; a relative address is the page's host, as HTTP is.
function websocketUrl(address) {
  const url = new URL(address, window.location.href);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  return url.toString();
}

const options = settings();
const fetcher = createGraphiQLFetcher({
  url: graphqlUrl(options.graphqlUrl),
  ...(options.subscriptionUrl ? { subscriptionUrl: websocketUrl(options.subscriptionUrl) } : {}),
});
const plugins = [explorerPlugin()];

createRoot(document.getElementById('playground')).render(
  <GraphiQL
    fetcher={fetcher}
    plugins={plugins}
    isHeadersEditorEnabled
    {...(options.defaultHeaders ? { defaultHeaders: options.defaultHeaders } : {})}
  />,
);
