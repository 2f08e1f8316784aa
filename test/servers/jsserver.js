// jsserver — a Node.js HTTP server for test/integration/servers/
// test_node_names.py: each POST /score carries a JSON order of a few kilobytes,
// and scoreOrderItems() spends a few milliseconds of CPU on it in
// JavaScript that V8 compiles at run time. Started with --perf-basic-prof,
// V8 writes what it compiled to /tmp/perf-PID.map, from which the
// collector names that code.
//
//   node --perf-basic-prof jsserver.js PORT
//
//   POST /score?rounds=N  hash the order's items N times (default 3000,
//                        about 5 ms of CPU for 40 items)
//   GET /health           200, no work
'use strict';
const http = require('http');

const port = Number(process.argv[2]);

// The CPU-heavy function the profile must name.
function scoreOrderItems(items, rounds) {
  let h = 0x811c9dc5;
  for (let r = 0; r < rounds; r++) {
    for (const it of items) {
      const name = String(it.name);
      for (let i = 0; i < name.length; i++) {
        h ^= name.charCodeAt(i) + r;
        h = Math.imul(h, 0x01000193) >>> 0;
      }
      h = (h + (it.qty | 0) * 31) >>> 0;
    }
  }
  return h;
}

function reply(res, status, obj) {
  const out = JSON.stringify(obj);
  res.writeHead(status, {'Content-Type': 'application/json',
                         'Content-Length': Buffer.byteLength(out)});
  res.end(out);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url, 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/health')
      return reply(res, 200, {ok: true});
    if (req.method !== 'POST' || url.pathname !== '/score')
      return reply(res, 404, {error: 'not found'});
    let order;
    try {
      order = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      return reply(res, 400, {error: 'bad json'});
    }
    const rounds = Number(url.searchParams.get('rounds') || '3000');
    const items = Array.isArray(order.items) ? order.items : [];
    reply(res, 200, {score: scoreOrderItems(items, rounds),
                     items: items.length});
  });
});

server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
