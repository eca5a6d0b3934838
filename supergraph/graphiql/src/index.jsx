// GraphiQL for the Reelgraph router, served at the router's own origin with no CDN.
// The page passes the GraphQL path in `data-endpoint` (no inline script: the CSP forbids it);
// queries and mutations go over HTTP, subscriptions over graphql-transport-ws, both same-origin.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { parse } from 'graphql';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { setNonce } from 'get-nonce';
import 'graphiql/style.css';
import './page.css';

// GraphiQL's dialogs (Radix, via react-remove-scroll) add a <style> element; the CSP allows
// style elements only with the page's per-response nonce, which this script tag carries.
const nonce = document.currentScript && document.currentScript.nonce;
if (nonce) setNonce(nonce);

const container = document.getElementById('graphiql');
const endpoint = new URL(container.dataset.endpoint || '/graphql', window.location.href);
const subscriptions = new URL(endpoint);
subscriptions.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';

const transport = createGraphiQLFetcher({
  url: endpoint.href,
  subscriptionUrl: subscriptions.href,
});

// The fetcher tells subscriptions (WebSocket) from queries (HTTP) by `documentAST`, which
// GraphiQL refreshes 100 ms after the last edit: run right after typing and it is the previous
// document's. Parse the query actually sent instead.
function documentOf(query, fallback) {
  try {
    return parse(query);
  } catch {
    return fallback;
  }
}

const fetcher = (params, options) =>
  transport(params, { ...options, documentAST: documentOf(params.query, options?.documentAST) });

createRoot(container).render(
  <StrictMode>
    <GraphiQL fetcher={fetcher} />
  </StrictMode>,
);
