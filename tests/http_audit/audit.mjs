// The graphql-http server audit against a running endpoint: one JSON line per audit
// ({id, name, status: "ok" | "warn" | "error", reason}) on stdout.
import { auditServer } from "graphql-http";

const url = process.argv[2];
const headers = JSON.parse(process.argv[3] || "{}");
const results = await auditServer({
  url,
  fetchFn: (input, init) =>
    fetch(input, { ...init, headers: { ...Object.fromEntries(new Headers(init?.headers)), ...headers } }),
});
for (const result of results) {
  process.stdout.write(
    JSON.stringify({ id: result.id, name: result.name, status: result.status, reason: result.reason ?? null }) + "\n",
  );
}
