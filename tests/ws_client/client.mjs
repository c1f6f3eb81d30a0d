// One subscriber, as an app would run it: graphql-ws's client over the `ws` socket.
// node client.mjs URL AUTHORIZATION|- QUERY VARIABLES_JSON
// Prints one JSON line per happening: {"type": "ready"} once the subscription is known to
// the server (a query sent after it on the same socket has been answered), then
// {"type": "next", "payload": …} per event, {"type": "complete"}, {"type": "error", …}
// or {"type": "closed", "code": …, "reason": …}; exits after complete, error or close.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, authorization, query, variables] = process.argv.slice(2);
const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  retryAttempts: 0,
  lazy: true,
  connectionParams: authorization === "-" ? {} : { Authorization: authorization },
  on: {
    closed: (event) => {
      print({ type: "closed", code: event.code, reason: String(event.reason || "") });
      process.exit(0);
    },
  },
});

client.subscribe(
  { query, variables: JSON.parse(variables || "{}") },
  {
    next: (payload) => print({ type: "next", payload }),
    error: (error) => {
      const detail = Array.isArray(error) ? error : { code: error.code, reason: error.reason };
      print({ type: "error", error: detail });
      process.exit(0);
    },
    complete: () => {
      print({ type: "complete" });
      process.exit(0);
    },
  },
);
// Messages of one socket are handled in order: once this answers, the server holds the
// subscription above.
client.subscribe(
  { query: "{ __typename }" },
  { next: () => print({ type: "ready" }), error: () => {}, complete: () => {} },
);
setTimeout(() => {
  print({ type: "timeout" });
  process.exit(1);
}, 60000);
