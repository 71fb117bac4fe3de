/* Order confirmation: reads ?session_id=cs_..., asks the server for the
 * status and polls while a delayed payment is still processing.
 * Only the fields we need are displayed; never raw JSON. */
(function () {
  'use strict';

  var Shop = window.Shop;
  var POLL_INTERVAL_MS = 2000;
  var POLL_WINDOW_MS = 60000;
  var SESSION_ID_RE = /^cs_[A-Za-z0-9_]{1,250}$/;
  var KNOWN_STATES = ['fulfilled', 'awaiting_payment', 'payment_failed', 'expired', 'pending'];

  var el = {};
  var sessionId = null;
  var deadline = 0;
  var timer = null;
  var lastView = '';
  var everSucceeded = false;

  function $(id) { return document.getElementById(id); }

  function setView(state, title, text, opts) {
    opts = opts || {};
    el.card.setAttribute('data-state', state);
    el.card.classList.toggle('is-delayed', !!opts.delayed);
    var viewKey = state + '|' + title + '|' + text;
    // Only touch the live region when something actually changed, so
    // screen readers are not re-told the same thing on every poll.
    if (viewKey !== lastView) {
      el.title.textContent = title;
      el.text.textContent = text;
      lastView = viewKey;
      if (opts.focus) el.title.focus();
    }
    el.checkAgain.hidden = !opts.checkAgain;
    el.back.textContent = opts.backLabel || 'Back to the shop';
    document.title = title + ' — Rust & Rails Supply Co.';
  }

  function isAmount(n) {
    return typeof n === 'number' && isFinite(n) && Math.floor(n) === n;
  }

  function setRow(row, valueEl, amount, currency, prefix) {
    var show = isAmount(amount) && amount !== 0;
    row.hidden = !show;
    valueEl.textContent = show ? (prefix || '') + Shop.formatMoney(amount, currency) : '';
  }

  /** Lines, then subtotal, discount, shipping and tax exactly as Stripe computed them, so the
   *  parts add up to the total shown. */
  function renderSummary(data, amountLabel) {
    var currency = data.currency;
    var items = Array.isArray(data.items) ? data.items.filter(function (it) {
      return it && typeof it.name === 'string' && it.name.trim() &&
        typeof it.quantity === 'number' && it.quantity > 0 && Math.floor(it.quantity) === it.quantity;
    }).slice(0, 100) : [];
    var hasAmount = isAmount(data.amount_total) && data.amount_total >= 0 && Shop.isCurrencyCode(currency);

    while (el.items.firstChild) el.items.removeChild(el.items.firstChild);
    items.forEach(function (it) {
      var li = document.createElement('li');
      var name = document.createElement('span');
      name.textContent = it.name.trim();
      var qty = document.createElement('span');
      qty.className = 'qty-label';
      qty.textContent = '\u00d7\u00a0' + it.quantity;
      li.appendChild(name);
      li.appendChild(qty);
      if (hasAmount && isAmount(it.amount_subtotal)) {
        var amount = document.createElement('span');
        amount.className = 'line-amount';
        amount.textContent = Shop.formatMoney(it.amount_subtotal, currency);
        li.appendChild(amount);
      }
      el.items.appendChild(li);
    });
    el.items.hidden = items.length === 0;

    var t = data.totals;
    var hasTotals = hasAmount && t && typeof t === 'object' && isAmount(t.amount_subtotal) &&
      isAmount(t.amount_discount) && isAmount(t.amount_shipping) && isAmount(t.amount_tax);
    el.breakdown.hidden = !hasTotals;
    if (hasTotals) {
      el.subtotal.textContent = Shop.formatMoney(t.amount_subtotal, currency);
      setRow(el.discountRow, el.discount, t.amount_discount, currency, '\u2212');
      var rate = typeof t.shipping_rate === 'string' && t.shipping_rate.trim() ? t.shipping_rate.trim().slice(0, 100) : '';
      el.shippingLabel.textContent = rate || 'Shipping';
      el.shippingRow.hidden = !rate && t.amount_shipping === 0;
      el.shipping.textContent = t.amount_shipping === 0 ? 'Free' : Shop.formatMoney(t.amount_shipping, currency);
      el.taxLabel.textContent = t.tax_included ? 'Tax (included)' : 'Tax';
      setRow(el.taxRow, el.tax, t.amount_tax, currency);
    }

    if (hasAmount) {
      el.amountLabel.textContent = amountLabel;
      el.amount.textContent = Shop.formatMoney(data.amount_total, currency);
    }
    el.amount.parentNode.hidden = !hasAmount;
    el.summary.hidden = items.length === 0 && !hasAmount;

    var number = typeof data.order_number === 'string' && /^[A-Z0-9-]{1,32}$/.test(data.order_number)
      ? data.order_number : '';
    el.number.textContent = number;
    el.numberLine.hidden = !number;
  }

  function hideSummary() {
    el.summary.hidden = true;
    el.numberLine.hidden = true;
  }

  function stopPolling() {
    clearTimeout(timer);
    timer = null;
  }

  function schedule(delayMs) {
    stopPolling();
    timer = setTimeout(check, delayMs);
  }

  function showDelayed(data) {
    stopPolling();
    setView(data ? data.fulfillment : 'pending',
      'Payment still processing',
      'Your payment hasn\u2019t been confirmed yet. Some payment methods take a few days. Your order is recorded as soon as it is; open this page again later, or choose Check again, to see where it stands.',
      { delayed: true, checkAgain: true });
  }

  // What happened to the money after payment (refunds, disputes), as the server recorded it.
  function afterPayment(data) {
    var refunded = typeof data.amount_refunded === 'number' ? data.amount_refunded : 0;
    var money = function (n) { return Shop.formatMoney(n, data.currency); };
    switch (data.money_state) {
      case 'partially_refunded':
        return { title: 'Your order is confirmed \u2014 partly refunded',
          text: 'Refunded ' + money(refunded) + ' of ' + money(data.amount_total) + '. The refund goes back to your original payment method.' };
      case 'refunded':
        return { title: 'Refunded',
          text: 'This order was refunded in full (' + money(refunded) + '). The refund goes back to your original payment method.' };
      case 'disputed':
        return { title: 'This payment is disputed',
          text: 'The payment for this order is being disputed with the card issuer. The shop will follow up once the dispute is resolved.' +
            (refunded ? ' Refunded so far: ' + money(refunded) + '.' : '') };
      case 'dispute_lost':
        return { title: 'This payment was reversed',
          text: 'After a dispute, the payment for this order was returned to the cardholder.' +
            (refunded ? ' Refunded before: ' + money(refunded) + '.' : '') };
      default:
        return null;
    }
  }

  /** What happens next, and nothing more: the order number is real, Stripe's receipt email only
   *  when the shop's Stripe account sends receipts. */
  function confirmedText(data) {
    var ships = data.totals && typeof data.totals.shipping_rate === 'string' && data.totals.shipping_rate;
    return 'Your payment was received and your order is recorded' +
      (ships ? ' for shipping to the address you gave at checkout' : '') + '. ' +
      'Keep your order number if you contact us. If this shop has Stripe receipts turned on, ' +
      'Stripe emails a receipt to the address you entered at checkout.';
  }

  function handle(data) {
    var f = KNOWN_STATES.indexOf(data.fulfillment) >= 0 ? data.fulfillment : 'unknown';

    switch (f) {
      case 'fulfilled':
        stopPolling();
        Shop.clearCart();
        renderSummary(data, 'Total paid');
        var after = afterPayment(data);
        setView('fulfilled',
          after ? after.title : 'Thank you \u2014 your order is confirmed',
          after ? after.text : confirmedText(data),
          { backLabel: 'Continue shopping', focus: true });
        return;

      case 'pending':
      case 'awaiting_payment':
        renderSummary(data, 'Order total');
        if (Date.now() >= deadline) {
          showDelayed(data);
          return;
        }
        setView(f, 'Payment processing\u2026',
          'Some payment methods take a little longer to confirm. This page updates automatically.');
        schedule(POLL_INTERVAL_MS);
        return;

      case 'payment_failed':
        stopPolling();
        hideSummary();
        setView('payment_failed',
          'Payment failed \u2014 you were not charged',
          'Your payment didn\u2019t go through, so no money was taken. Your cart is still saved in this tab; you can try again with another payment method.',
          { backLabel: 'Return to the shop and try again', focus: true });
        return;

      case 'expired':
        stopPolling();
        hideSummary();
        setView('expired',
          'This checkout session has expired',
          'No payment was taken. Your cart is still saved in this tab, so you can start a new checkout.',
          { backLabel: 'Return to the shop', focus: true });
        return;

      default:
        stopPolling();
        hideSummary();
        setView('unknown',
          'We couldn\u2019t confirm your order yet',
          'The shop answered in a way this page doesn\u2019t understand. Please check again in a moment.',
          { checkAgain: true, focus: true });
    }
  }

  /** checkAgain only when asking again can change the answer (a network or server hiccup). */
  function showError(text, checkAgain) {
    stopPolling();
    hideSummary();
    setView('error', 'We couldn\u2019t load your order', text, { checkAgain: !!checkAgain, focus: true });
  }

  function check() {
    timer = null;
    Shop.api('/api/checkout-status?session_id=' + encodeURIComponent(sessionId)).then(function (res) {
      if (res.ok && res.data && typeof res.data === 'object' && typeof res.data.fulfillment === 'string') {
        everSucceeded = true;
        handle(res.data);
        return;
      }

      // Transient problems (offline, rate limited, server hiccup): retry
      // quietly inside the polling window.
      var transient = res.networkError || res.status === 429 || res.status >= 500 || (res.ok && !res.data);
      if (transient && Date.now() < deadline) {
        var wait = res.status === 429 && res.retryAfter
          ? Math.min(res.retryAfter * 1000, 30000)
          : POLL_INTERVAL_MS;
        schedule(wait);
        return;
      }
      if (transient && everSucceeded) {
        // We already showed "processing"; don't replace it with a scary error.
        showDelayed(null);
        return;
      }

      if (res.status === 404 || res.status === 400) {
        showError('This link doesn\u2019t match an order of this shop. Open the link from your checkout again; if you paid, your order is recorded.', false);
        return;
      }
      if (res.status === 403) {
        showError('This page was opened from another site. Open it from the shop\u2019s own address instead.', false);
        return;
      }
      showError(Shop.describeError(res).text, transient);
    });
  }

  function start() {
    deadline = Date.now() + POLL_WINDOW_MS;
    check();
  }

  function init() {
    el.card = $('order-status');
    el.title = $('status-title');
    el.text = $('status-text');
    el.summary = $('order-summary');
    el.items = $('order-items');
    el.amount = $('order-amount');
    el.amountLabel = $('order-amount-label');
    el.back = $('back-link');
    el.checkAgain = $('check-again');
    el.breakdown = $('order-breakdown');
    el.subtotal = $('order-subtotal');
    el.discount = $('order-discount');
    el.discountRow = $('order-discount-row');
    el.shipping = $('order-shipping');
    el.shippingLabel = $('order-shipping-label');
    el.shippingRow = $('order-shipping-row');
    el.tax = $('order-tax');
    el.taxLabel = $('order-tax-label');
    el.taxRow = $('order-tax-row');
    el.number = $('order-number');
    el.numberLine = $('order-number-line');

    el.checkAgain.addEventListener('click', function () {
      el.checkAgain.hidden = true;
      setView('loading', 'Checking your order\u2026', 'This only takes a moment.');
      start();
    });

    var params;
    try { params = new URLSearchParams(window.location.search); } catch (e) { params = null; }
    var raw = params ? params.get('session_id') : null;

    if (!raw || !SESSION_ID_RE.test(raw)) {
      hideSummary();
      setView('error',
        raw ? 'This order link isn\u2019t valid' : 'No order to show',
        raw
          ? 'The order reference in this link is malformed, so we can\u2019t look it up. Open the link from your checkout again.'
          : 'This page shows an order right after checkout. Start from the shop to place one.',
        { focus: true });
      return;
    }

    sessionId = raw;
    start();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
