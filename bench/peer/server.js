// The Node.js peer for bench/run.sh: Stripe's docs webhook sample, on a plain
// `http` server instead of Express (one dependency: the npm `stripe` SDK).
// Raw body -> stripe.webhooks.constructEvent(rawBody, sig, secret) -> 200
// {"received":true}; 400 when the signature (or the JSON) does not check out.
//
//   STRIPE_SECRET_KEY=sk_test_... STRIPE_WEBHOOK_SECRET=whsec_... PORT=4242 node server.js
'use strict';

const http = require('http');
const stripe = require('stripe')(process.env.STRIPE_SECRET_KEY);

const endpointSecret = process.env.STRIPE_WEBHOOK_SECRET;
const port = Number(process.env.PORT || 4242);
const BODY_LIMIT = 1024 * 1024; // same limit as our /api/webhook

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/api/webhook') {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not found"}');
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > BODY_LIMIT) {
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
      res.end('{"error":"too large"}');
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (res.writableEnded) return;
    const sig = req.headers['stripe-signature'];
    let event;
    try {
      event = stripe.webhooks.constructEvent(Buffer.concat(chunks), sig, endpointSecret);
    } catch (err) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `Webhook Error: ${err.message}` }));
      return;
    }
    switch (event.type) {
      case 'checkout.session.completed':
        // fulfil here (the benchmark sends a type that is only acknowledged)
        break;
      default:
        break;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"received":true}');
  });
});

server.listen(port, '127.0.0.1');
