// jsburn — a node http server with a CPU-heavy JavaScript endpoint, for
// profshim's test of stacks through JIT-compiled code
// (test/integration/servers/test_node.py).
//
//   node jsburn.js PORT
//
//   GET /report?rows=N  builds N records, scores them, sorts them and
//                       hashes their names: JIT-compiled JavaScript, a
//                       fixed amount of work per request (about 5 ms of
//                       CPU at the default 4000 rows on the project's
//                       machine), the kind of handler that makes a node
//                       server CPU-bound
//   GET /fast           answers at once
//
// SIGTERM closes the server and exits once its connections are closed.
"use strict";
const http = require("http");

function hashName(s, h) {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function score(r) {
  let x = r.id * 2654435761 % 1000003;
  for (let k = 0; k < 40; k++)
    x = (x * 48271 + r.weight) % 2147483647;
  return x / 2147483647;
}

function report(rows) {
  const recs = [];
  for (let i = 0; i < rows; i++)
    recs.push({ id: i, weight: i % 97, name: "customer-" + i, score: 0 });
  for (const r of recs)
    r.score = score(r);
  recs.sort((a, b) => a.score - b.score);
  let h = 2166136261;
  for (const r of recs)
    h = hashName(r.name, h);
  return { rows, best: recs[rows - 1].id, hash: h };
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  let body = "fast\n";
  if (url.pathname === "/report")
    body = JSON.stringify(report(Number(url.searchParams.get("rows") ||
                                        4000)));
  res.writeHead(200, { "Content-Type": "application/json",
                       "Content-Length": Buffer.byteLength(body) });
  res.end(body);
});

server.listen(Number(process.argv[2]), "127.0.0.1");
process.on("SIGTERM", () => server.close(() => process.exit(0)));
