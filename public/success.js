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

  function renderSummary(data, amountLabel) {
    var items = Array.isArray(data.items) ? data.items.filter(function (it) {
      return it && typeof it.name === 'string' && it.name.trim() &&
        typeof it.quantity === 'number' && it.quantity > 0 && Math.floor(it.quantity) === it.quantity;
    }).slice(0, 100) : [];
    var hasAmount = typeof data.amount_total === 'number' && isFinite(data.amount_total) &&
      data.amount_total >= 0 && Shop.isCurrencyCode(data.currency);

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
      el.items.appendChild(li);
    });
    el.items.hidden = items.length === 0;

    if (hasAmount) {
      el.amountLabel.textContent = amountLabel;
      el.amount.textContent = Shop.formatMoney(data.amount_total, data.currency);
    }
    el.amount.parentNode.hidden = !hasAmount;
    el.summary.hidden = items.length === 0 && !hasAmount;
  }

  function hideSummary() {
    el.summary.hidden = true;
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
      'Your payment hasn\u2019t been confirmed yet. Some payment methods take longer; we\u2019ll email you a confirmation as soon as it completes. You don\u2019t need to keep this page open.',
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
          text: 'The payment for this order is being disputed with the card issuer. The shop will follow up once the dispute is resolved.' };
      case 'dispute_lost':
        return { title: 'This payment was reversed',
          text: 'After a dispute, the payment for this order was returned to the cardholder.' };
      default:
        return null;
    }
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
          after ? after.text : 'Your payment was received and your order is being prepared. A confirmation will be sent to your email address.',
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
          'If you completed a payment, you\u2019ll receive a confirmation by email. Otherwise, no payment was taken.',
          { checkAgain: true, focus: true });
    }
  }

  function showError(text) {
    stopPolling();
    hideSummary();
    setView('error', 'We couldn\u2019t load your order', text, { checkAgain: true, focus: true });
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

      var err = Shop.describeError(res, 'Something went wrong while looking up your order.');
      showError(err.text + ' If you completed a payment, you\u2019ll receive a confirmation by email.');
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
          ? 'The order reference in this link is malformed, so we can\u2019t look it up. If you completed a payment, you\u2019ll receive a confirmation by email.'
          : 'This page needs an order reference from the checkout. If you completed a payment, you\u2019ll receive a confirmation by email.',
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
