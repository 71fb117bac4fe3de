// Oracle: stripe-node's webhooks.constructEvent on every case of a corpus.
// stdin: [{"body_b64": "...", "header": "..." | null, "secrets": ["whsec_..."]}, ...]
// stdout: [true|false, ...] — accepted if constructEvent accepts under ANY secret.
const Stripe = require('stripe');
const stripe = Stripe('sk_test_oracle');
let input = '';
process.stdin.on('data', (c) => (input += c));
process.stdin.on('end', () => {
  const cases = JSON.parse(input);
  const out = cases.map((c) => {
    const body = Buffer.from(c.body_b64, 'base64');
    return c.secrets.some((secret) => {
      try {
        stripe.webhooks.constructEvent(body, c.header, secret, 300);
        return true;
      } catch (e) {
        return false;
      }
    });
  });
  process.stdout.write(JSON.stringify(out));
});
